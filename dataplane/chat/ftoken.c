/* File-transfer tokens; see ftoken.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "dataplane/chat/ftoken.h"

struct tok {
	char			id[FTOKEN_LEN + 1];
	struct ftoken_info	info;
};

struct ftoken_store {
	pthread_mutex_t	lock;
	uint32_t	ttl_s, max, n;
	struct tok	*v;		/* unordered; expired entries are swept on issue */
};

struct ftoken_store *
ftoken_store_create(uint32_t ttl_s, uint32_t max)
{
	struct ftoken_store *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->v = calloc(max ? max : 1, sizeof(*s->v))) == NULL) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->ttl_s = ttl_s;
	s->max = max;
	return s;
}

void
ftoken_store_destroy(struct ftoken_store *s)
{
	if (s == NULL)
		return;
	/* Tokens are credentials: leave nothing behind in freed memory. */
	memset(s->v, 0, s->max * sizeof(*s->v));
	pthread_mutex_destroy(&s->lock);
	free(s->v);
	free(s);
}

static int
guid(char out[FTOKEN_LEN + 1])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, FTOKEN_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

int
ftoken_repo_name(const char *client_name, char out[FTOKEN_NAME_MAX])
{
	const char *dot = client_name ? strrchr(client_name, '.') : NULL;
	char id[FTOKEN_LEN + 1];
	size_t elen = dot ? strlen(dot + 1) : 0;

	if (guid(id) != 0)
		return -EIO;
	for (size_t i = 0; i < elen; i++) {
		char ch = dot[1 + i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			elen = 0;
	}
	if (elen == 0 || elen > FTOKEN_EXT_MAX)
		snprintf(out, FTOKEN_NAME_MAX, "%s", id);
	else
		snprintf(out, FTOKEN_NAME_MAX, "%s.%s", id, dot + 1);
	return 0;
}

static void
sweep(struct ftoken_store *s, uint64_t now_s)
{
	for (uint32_t i = 0; i < s->n;)
		if (s->v[i].info.expires_s <= now_s)
			s->v[i] = s->v[--s->n];
		else
			i++;
}

int
ftoken_issue(struct ftoken_store *s, struct ftoken_info *info, uint64_t now_s,
	     char token[FTOKEN_LEN + 1])
{
	int rc = 0;

	if (guid(token) != 0)
		return -EIO;
	info->expires_s = now_s + s->ttl_s;
	pthread_mutex_lock(&s->lock);
	sweep(s, now_s);
	if (s->n == s->max) {
		rc = -ENOSPC;
	} else {
		memcpy(s->v[s->n].id, token, FTOKEN_LEN + 1);
		s->v[s->n].info = *info;
		s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
ftoken_take(struct ftoken_store *s, const char *token, enum ftoken_dir dir, const char *room_id,
	    const char *name, uint64_t now_s, struct ftoken_info *out)
{
	int rc = -ENOENT;

	if (strlen(token) != FTOKEN_LEN)
		return -ENOENT;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->n; i++) {
		struct tok *t = &s->v[i];

		if (memcmp(t->id, token, FTOKEN_LEN) != 0)
			continue;
		if (t->info.expires_s <= now_s)
			rc = -ENOENT;
		else if (t->info.dir != dir || strcmp(t->info.room_id, room_id) != 0 ||
			 strcmp(t->info.name, name) != 0)
			rc = -EACCES;
		else
			rc = 0;
		if (rc == 0)
			*out = t->info;
		*t = s->v[--s->n];
		memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

uint32_t
ftoken_count(struct ftoken_store *s)
{
	uint32_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}
