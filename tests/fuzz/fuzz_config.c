/* libFuzzer target: parleyd's configuration (router/config.c) as boot reads
 * it: the embedded defaults, an INI file an operator wrote, then --set
 * overrides, then config_finish(). Input: the INI file up to the first NUL
 * byte; after it, NUL-separated "section.key=value" overrides (each handed
 * to config_set() in a buffer of its exact length). The file lives on tmpfs
 * under a name unique to the process. Checks: every refusal says why (a
 * refused file names the file); an accepted configuration keeps the
 * invariants config_finish() promises: ring_size a power of two in range,
 * register_min_expires <= register_expires, realm, paths and the SIP port
 * derived, socket mode octal <= 0777, every string NUL-terminated inside its
 * field, every room named with a known privacy, [array] prefix /x and
 * keepalive below the lease; config_free() leaves nothing behind (LSan). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "router/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];


#define TERMINATED(fld) (memchr((fld), '\0', sizeof(fld)) != NULL)

static void
check_accepted(const struct config *c)
{
	const struct engine_conf *e = &c->engine;

	if (e->ring_size < 64 || e->ring_size > (1u << 22) || (e->ring_size & (e->ring_size - 1)))
		abort();
	if (e->register_min_expires > e->register_expires)
		abort();
	if (!TERMINATED(e->domain) || !TERMINATED(e->realm) || !TERMINATED(e->sip_host) ||
	    !TERMINATED(c->data_dir) || !TERMINATED(c->tls_cert) || !TERMINATED(c->tls_key) ||
	    !TERMINATED(c->htdigest) || !TERMINATED(c->db_dir) ||
	    !TERMINATED(c->compliance_dir) || !TERMINATED(c->files_dir) ||
	    !TERMINATED(c->control_socket) || !TERMINATED(c->array_prefix) ||
	    !TERMINATED(c->array_advertise_sip) || !TERMINATED(c->array_cert) ||
	    !TERMINATED(c->array_key) || !TERMINATED(c->source))
		abort();
	if (e->domain[0] == '\0' || e->realm[0] == '\0' || c->data_dir[0] == '\0' ||
	    c->tls_cert[0] == '\0' || c->tls_key[0] == '\0' || c->htdigest[0] == '\0' ||
	    c->db_dir[0] == '\0' || c->compliance_dir[0] == '\0' || c->files_dir[0] == '\0' ||
	    c->control_socket[0] == '\0' || e->sip_host[0] == '\0' || e->sip_port == 0)
		abort();
	if (c->control_mode > 0777 || !c->compliance_enabled)
		abort();
	if (c->nrooms > CONFIG_ROOMS_MAX)
		abort();
	for (uint32_t i = 0; i < c->nrooms; i++) {
		const struct config_room *r = &c->rooms[i];

		if (!TERMINATED(r->name) || r->name[0] == '\0' || !TERMINATED(r->privacy))
			abort();
		if (strcmp(r->privacy, "open") && strcmp(r->privacy, "closed") &&
		    strcmp(r->privacy, "secret"))
			abort();
		for (uint32_t j = 0; j < i; j++)
			if (strcasecmp(c->rooms[j].name, r->name) == 0)
				abort();	/* one entry per room */
	}
	if (c->array_etcd[0] != '\0') {
		size_t n = strlen(c->array_prefix);

		if (n == 0 || c->array_prefix[0] != '/' || c->array_prefix[n - 1] == '/')
			abort();
		if (c->array_keepalive_s >= c->array_lease_ttl_s)
			abort();
		if (c->array_advertise_sip[0] == '\0' || c->array_cert[0] == '\0')
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c;		/* ~200 KiB: not on the stack */
	const uint8_t *nul, *p, *end = data + size;
	char err[512];
	size_t filelen;

	if (size > 16384)
		return 0;
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/dev/shm/fuzz-config-%d.ini", (int)getpid());
	nul = memchr(data, '\0', size);
	filelen = nul != NULL ? (size_t)(nul - data) : size;
	if (!fz_write_file(path, data, filelen))
		abort();
	config_defaults(&c);
	err[0] = '\0';
	if (config_load(&c, path, err, sizeof(err)) != 0) {
		if (strncmp(err, path, strlen(path)) != 0)
			abort();	/* a refusal names the file (and says why) */
		if (strlen(err) <= strlen(path) + 1)
			abort();
		goto out;
	}
	for (p = nul != NULL ? nul + 1 : end; p < end;) {
		const uint8_t *q = memchr(p, '\0', (size_t)(end - p));
		size_t n = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
		char *set = malloc(n + 1);
		int rc;

		if (set == NULL)
			goto out;
		memcpy(set, p, n);
		set[n] = '\0';
		err[0] = '\0';
		rc = config_set(&c, set, err, sizeof(err));
		free(set);
		if (rc != 0) {
			if (err[0] == '\0')
				abort();
			goto out;
		}
		p += n + 1;
	}
	err[0] = '\0';
	if (config_finish(&c, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		goto out;
	}
	check_accepted(&c);
out:
	config_free(&c);
	unlink(path);
	return 0;
}
