/*
 * config.c - viamkey.conf.
 *
 * Security rules for this file:
 *  1. The file MUST be opened once, with O_NOFOLLOW, and checked through
 *     that descriptor (fstat) before it is read; what is parsed (ini.c) is
 *     the text read through that descriptor, so no path is re-resolved.
 *  2. It MUST be regular, owned by root or the euid, not writable by group
 *     or others, and at most VK_CONFIG_MAX_SIZE bytes.
 *  3. Every value is validated here; an unknown section or key is an error.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"
#include "ini.h"
#include "token.h"

#define DEFAULT_BUSY_TIMEOUT_MS 100
#define DEFAULT_FAIL_DELAY_MS   2000
#define DEFAULT_LAST_USED       60
#define DEFAULT_AUDIT_KEEP      (90 * 86400)
#define DEFAULT_HEARTBEAT       10
#define DEFAULT_RESYNC          600
#define DEFAULT_REPLICAS        3
#define MAX_MS                  60000
#define PROMPT_MAX              128

static vk_rc
set_defaults(struct vk_config *cfg, char err[VK_ERRLEN])
{
	memset(cfg, 0, sizeof *cfg);
	cfg->busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS;
	cfg->fail_delay_ms = DEFAULT_FAIL_DELAY_MS;
	cfg->last_used_interval = DEFAULT_LAST_USED;
	cfg->audit_keep = DEFAULT_AUDIT_KEEP;
	cfg->store_path = strdup(VK_DEFAULT_STORE);
	cfg->prompt = strdup(VK_DEFAULT_PROMPT);
	cfg->sync.bucket = strdup(VK_DEFAULT_BUCKET);
	cfg->sync.signing_key = strdup(VK_DEFAULT_SIGNING_KEY);
	cfg->sync.account_key = strdup(VK_DEFAULT_ACCOUNT_KEY);
	cfg->sync.system_credentials = strdup(VK_DEFAULT_SYSTEM_CREDS);
	cfg->sync.heartbeat_interval = DEFAULT_HEARTBEAT;
	cfg->sync.resync_interval = DEFAULT_RESYNC;
	cfg->sync.replicas = DEFAULT_REPLICAS;
	cfg->sync.end_sessions = 1;
	if (cfg->store_path == NULL || cfg->prompt == NULL || cfg->sync.bucket == NULL ||
	    cfg->sync.signing_key == NULL || cfg->sync.account_key == NULL ||
	    cfg->sync.system_credentials == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	return VK_OK;
}

static int
parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static int
prompt_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > PROMPT_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

struct ctx {
	struct vk_config *cfg;
	const char *path;
	char *err;
	int line; /* of the key being applied */
};

static vk_rc
bad_value(const struct ctx *c, const char *sec, const char *key, const char *why)
{
	char shown[VK_INI_SHOWN + 4];

	vk_seterr(c->err, "%s:%d: [%s] %s: %s", c->path, c->line, sec, vk_ini_shown(key, shown),
	          why);
	return VK_ERR_USAGE;
}

static vk_rc
replace(char **dst, const char *v, char *err)
{
	char *copy = strdup(v);

	if (copy == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	free(*dst);
	*dst = copy;
	return VK_OK;
}

/* A duration as keyadm takes it (90s, 15m, 24h, 7d, 2w), or "0" where zero means off. */
static int
parse_duration(const char *v, int zero_ok, int64_t *out)
{
	if (zero_ok && strcmp(v, "0") == 0) {
		*out = 0;
		return 0;
	}
	return vk_duration_parse(v, out);
}

static int
list_valid(const char *v, const char *allowed)
{
	return *v != '\0' && strspn(v, allowed) == strlen(v);
}

#define URL_CHARS  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-_[]%@, "
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

/* One key of [sync]. */
static vk_rc
apply_sync(struct vk_sync_config *s, const struct ctx *c, const char *key, const char *v)
{
	unsigned char pk[32];
	size_t n;

	if (strcmp(key, "servers") == 0) {
		if (!list_valid(v, URL_CHARS) || strstr(v, "://") == NULL)
			return bad_value(c, "sync", key,
			                 "must be NATS URLs such as nats://10.0.0.1:4222,"
			                 " separated by commas");
		return replace(&s->servers, v, c->err);
	} else if (strcmp(key, "bucket") == 0) {
		if (!list_valid(v, NAME_CHARS) || strlen(v) > 64)
			return bad_value(c, "sync", key,
			                 "must be 1-64 letters, digits, '-' or '_'");
		return replace(&s->bucket, v, c->err);
	} else if (strcmp(key, "credentials") == 0 || strcmp(key, "password_file") == 0 ||
	           strcmp(key, "signing_key") == 0 || strcmp(key, "account_key") == 0 ||
	           strcmp(key, "system_credentials") == 0 || strcmp(key, "metrics_file") == 0) {
		if (v[0] != '/')
			return bad_value(c, "sync", key, "must be an absolute path");
		return replace(strcmp(key, "credentials") == 0     ? &s->credentials
		               : strcmp(key, "password_file") == 0 ? &s->password_file
		               : strcmp(key, "signing_key") == 0   ? &s->signing_key
		               : strcmp(key, "account_key") == 0   ? &s->account_key
		               : strcmp(key, "metrics_file") == 0  ? &s->metrics_file
		                                                   : &s->system_credentials,
		               v, c->err);
	} else if (strcmp(key, "user") == 0) {
		if (!vk_user_valid(v))
			return bad_value(c, "sync", key, "must be a NATS user name");
		return replace(&s->user, v, c->err);
	} else if (strcmp(key, "authority_key") == 0 || strcmp(key, "root_key") == 0) {
		if (sodium_base642bin(pk, sizeof pk, v, strlen(v), NULL, &n, NULL,
		                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    n != sizeof pk)
			return bad_value(
			    c, "sync", key,
			    strcmp(key, "root_key") == 0
			        ? "must be an Ed25519 public key in base64, as keyadm root"
			          " init prints it"
			        : "must be an Ed25519 public key in base64, as keyadm"
			          " authority init prints it");
		return replace(strcmp(key, "root_key") == 0 ? &s->root_key : &s->authority_key, v,
		               c->err);
	} else if (strcmp(key, "heartbeat_interval") == 0 || strcmp(key, "resync_interval") == 0 ||
	           strcmp(key, "max_staleness") == 0) {
		int zero_ok = strcmp(key, "max_staleness") == 0;
		int64_t *out = zero_ok                                  ? &s->max_staleness
		               : strcmp(key, "heartbeat_interval") == 0 ? &s->heartbeat_interval
		                                                        : &s->resync_interval;

		if (parse_duration(v, zero_ok, out) != 0)
			return bad_value(
			    c, "sync", key,
			    zero_ok ? "must be 0 (off) or a duration such as 90s, 15m or 1h"
			            : "must be a duration such as 10s, 15m or 1h");
	} else if (strcmp(key, "replicas") == 0) {
		if (parse_int(v, 1, 5, &s->replicas) != 0)
			return bad_value(c, "sync", key, "must be 1 to 5");
	} else if (strcmp(key, "end_sessions") == 0) {
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
			return bad_value(c, "sync", key, "must be yes or no");
		s->end_sessions = strcmp(v, "yes") == 0;
	} else {
		char shown[VK_INI_SHOWN + 4];

		vk_seterr(c->err, "%s:%d: unknown key \"%s\" in [sync]", c->path, c->line,
		          vk_ini_shown(key, shown));
		return VK_ERR_USAGE;
	}
	return VK_OK;
}

/* One "key = value" of section sec (ini.c refused a key given twice). */
static vk_rc
apply(struct vk_config *cfg, const struct ctx *c, const char *sec, const char *key, const char *v)
{
	int n;

	if (strcmp(sec, "store") == 0 && strcmp(key, "path") == 0) {
		if (v[0] != '/')
			return bad_value(c, sec, key, "must be an absolute path");
		return replace(&cfg->store_path, v, c->err);
	} else if (strcmp(sec, "store") == 0 && strcmp(key, "busy_timeout_ms") == 0) {
		if (parse_int(v, 0, MAX_MS, &cfg->busy_timeout_ms) != 0)
			return bad_value(c, sec, key, "must be a number of milliseconds, 0-60000");
	} else if (strcmp(sec, "machine") == 0 && strcmp(key, "id") == 0) {
		if (!vk_uuid_valid(v))
			return bad_value(c, sec, key, "must be a lowercase UUIDv4");
		return replace(&cfg->machine_id, v, c->err);
	} else if (strcmp(sec, "pam") == 0 && strcmp(key, "role") == 0) {
		if ((cfg->pam_role = vk_role_parse(v)) == VK_ROLE_NONE)
			return bad_value(c, sec, key, "must be owner, operator or viewer");
	} else if (strcmp(sec, "pam") == 0 && strcmp(key, "prompt") == 0) {
		if (!prompt_valid(v))
			return bad_value(c, sec, key, "must be 1-128 printable characters");
		return replace(&cfg->prompt, v, c->err);
	} else if (strcmp(sec, "pam") == 0 && strcmp(key, "fail_delay_ms") == 0) {
		if (parse_int(v, 0, MAX_MS, &cfg->fail_delay_ms) != 0)
			return bad_value(c, sec, key, "must be a number of milliseconds, 0-60000");
	} else if (strcmp(sec, "audit") == 0 && strcmp(key, "last_used_interval") == 0) {
		if (parse_int(v, 0, INT_MAX, &n) != 0)
			return bad_value(c, sec, key, "must be a number of seconds");
		cfg->last_used_interval = n;
	} else if (strcmp(sec, "audit") == 0 && strcmp(key, "keep") == 0) {
		if (parse_duration(v, 0, &cfg->audit_keep) != 0)
			return bad_value(c, sec, key, "must be a duration such as 30d or 90d");
	} else if (strcmp(sec, "sync") == 0) {
		return apply_sync(&cfg->sync, c, key, v);
	} else if (strcmp(sec, "services") == 0) {
		struct vk_service_role *sr;
		vk_role r = vk_role_parse(v);

		if (r == VK_ROLE_NONE)
			return bad_value(c, sec, key, "must be owner, operator or viewer");
		sr = realloc(cfg->services, (cfg->nservices + 1) * sizeof *sr);
		if (sr == NULL) {
			vk_seterr(c->err, "out of memory");
			return VK_ERR_NOMEM;
		}
		cfg->services = sr;
		sr[cfg->nservices].role = r;
		if ((sr[cfg->nservices].service = strdup(key)) == NULL) {
			vk_seterr(c->err, "out of memory");
			return VK_ERR_NOMEM;
		}
		cfg->nservices++;
	} else {
		char shown[VK_INI_SHOWN + 4];

		vk_seterr(c->err, "%s:%d: unknown key \"%s\" in [%s]", c->path, c->line,
		          vk_ini_shown(key, shown), sec);
		return VK_ERR_USAGE;
	}
	return VK_OK;
}

static int
known_section(const char *s)
{
	static const char *const names[] = {"store", "machine", "pam", "services", "audit", "sync"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i]) == 0)
			return 1;
	return 0;
}

/* One header or key of the file, from vk_ini_parse(). */
static int
apply_entry(void *ctx, const struct vk_ini_entry *en)
{
	struct ctx *c = ctx;

	c->line = en->line;
	if (en->key != NULL)
		return apply(c->cfg, c, en->section, en->key, en->value);
	if (!known_section(en->section)) {
		char shown[VK_INI_SHOWN + 4];

		vk_seterr(c->err, "%s:%d: unknown section [%s]", c->path, en->line,
		          vk_ini_shown(en->section, shown));
		return VK_ERR_USAGE;
	}
	return VK_OK;
}

/* Opens and checks path; reads it into *buf. Returns -1 with *missing set when absent. */
static vk_rc
open_checked(const char *path, int *fd_out, char **buf_out, int *missing, char err[VK_ERRLEN])
{
	struct stat st;
	char *buf = NULL;
	ssize_t got;
	int fd;

	*missing = 0;
	/* O_NONBLOCK: a FIFO must be refused below, not wait for a writer */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			*missing = 1;
			return VK_OK;
		}
		vk_seterr(err, "%s: %s%s", path, strerror(errno),
		          errno == ELOOP ? " (symbolic links are refused)" : "");
		return VK_ERR_STORE;
	}
	if (fstat(fd, &st) != 0) {
		vk_seterr(err, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		vk_seterr(err, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		vk_seterr(err, "%s: owned by uid %u; it must be owned by root (chown root %s)",
		          path, (unsigned)st.st_uid, path);
		goto fail;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		vk_seterr(err, "%s: writable by group or others; run chmod go-w %s", path, path);
		goto fail;
	}
	if (st.st_size > VK_CONFIG_MAX_SIZE) {
		vk_seterr(err, "%s: larger than %d bytes", path, VK_CONFIG_MAX_SIZE);
		goto fail;
	}
	if ((buf = calloc(1, (size_t)st.st_size + 1)) == NULL) {
		vk_seterr(err, "out of memory");
		close(fd);
		return VK_ERR_NOMEM;
	}
	got = pread(fd, buf, (size_t)st.st_size, 0);
	if (got != st.st_size) {
		vk_seterr(err, "%s: short read", path);
		goto fail;
	}
	if (memchr(buf, '\0', (size_t)got) != NULL) {
		vk_seterr(err, "%s: contains a NUL byte", path);
		goto fail;
	}
	*fd_out = fd;
	*buf_out = buf;
	return VK_OK;
fail:
	free(buf);
	close(fd);
	return VK_ERR_STORE;
}

vk_rc
vk_config_load(const char *path, struct vk_config *cfg, char err[VK_ERRLEN])
{
	struct ctx c = {cfg, path, err, 0};
	struct vk_ini_error ie;
	char *buf = NULL;
	int fd = -1, missing, rc;

	if ((rc = set_defaults(cfg, err)) != VK_OK)
		return rc;
	if ((rc = open_checked(path, &fd, &buf, &missing, err)) != VK_OK || missing)
		return rc;
	close(fd);
	if ((rc = vk_ini_parse(buf, apply_entry, &c, &ie)) < 0) {
		vk_seterr(err, "%s:%d: %s", path, ie.line, ie.what);
		rc = VK_ERR_USAGE;
	}
	free(buf);
	return rc;
}

void
vk_config_free(struct vk_config *cfg)
{
	for (size_t i = 0; i < cfg->nservices; i++)
		free(cfg->services[i].service);
	free(cfg->services);
	free(cfg->store_path);
	free(cfg->machine_id);
	free(cfg->prompt);
	free(cfg->sync.servers);
	free(cfg->sync.bucket);
	free(cfg->sync.credentials);
	free(cfg->sync.user);
	free(cfg->sync.password_file);
	free(cfg->sync.authority_key);
	free(cfg->sync.account_key);
	free(cfg->sync.system_credentials);
	free(cfg->sync.metrics_file);
	free(cfg->sync.root_key);
	free(cfg->sync.signing_key);
	memset(cfg, 0, sizeof *cfg);
}

vk_role
vk_config_required_role(const struct vk_config *cfg, const char *service, vk_role arg)
{
	if (arg != VK_ROLE_NONE)
		return arg;
	for (size_t i = 0; service != NULL && i < cfg->nservices; i++)
		if (strcasecmp(cfg->services[i].service, service) == 0)
			return cfg->services[i].role;
	if (cfg->pam_role != VK_ROLE_NONE)
		return cfg->pam_role;
	return VK_ROLE_OPERATOR;
}
