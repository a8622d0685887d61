/*
 * config.c - viamkey.conf.
 *
 * Security rules for this file:
 *  1. The file MUST be opened once, with O_NOFOLLOW, and checked through
 *     that descriptor (fstat) before it is parsed; iniparser then reads the
 *     same open file through /proc/self/fd, so no path is re-resolved.
 *  2. It MUST be regular, owned by root or the euid, not writable by group
 *     or others, and at most VK_CONFIG_MAX_SIZE bytes.
 *  3. Every value is validated here; an unknown section or key is an error.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iniparser.h>
#include <sodium.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"
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
#define INI_LINE_MAX            1024 /* iniparser's ASCIILINESZ */

static __thread char parse_error[VK_ERRLEN];

/* iniparser's error callback; printf-like, which clang's -Wformat-nonliteral needs to know */
static int capture_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
capture_error(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (parse_error[0] != '\0')
		return 0; /* keep the first */
	va_start(ap, fmt);
	n = vsnprintf(parse_error, sizeof parse_error, fmt, ap);
	va_end(ap);
	return n;
}

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

/* Narrows [*s, *e) to exclude white space at both ends. */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/*
 * Line number of the nth (from 0) occurrence of `key` in `section`, or of
 * the section header when key is NULL; 0 if there is none. The text is
 * read as iniparser 4.1 reads it, or a key set twice could hide from this
 * search: a line ending in '\' goes on with the next one (the number is
 * that of its first line); a comment starts with ';' or '#'; a header is a
 * line "[...]", named by what lies between the '[' and the first ']',
 * trimmed; a key is what comes before the first '=', trimmed. Names compare
 * case-insensitively, as iniparser lowercases them.
 */
static int
find_nth_line(const char *buf, const char *section, const char *key, int nth)
{
	char text[INI_LINE_MAX + 1], cur[INI_LINE_MAX + 1] = "";
	size_t len = 0;
	int line = 0, first = 0;

	for (const char *p = buf; *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		size_t take = n < INI_LINE_MAX - len ? n : INI_LINE_MAX - len;
		const char *s = text, *e;

		if (len == 0)
			first = line + 1;
		line++;
		/* a longer line fails iniparser before anything asks for its number */
		memcpy(text + len, p, take);
		len += take;
		p += end ? n + 1 : n;
		e = text + len;
		trim(&s, &e);
		if (s < e && e[-1] == '\\') {
			len = (size_t)(e - 1 - text); /* the next line replaces the '\' */
			continue;
		}
		len = 0;
		if (s == e || *s == ';' || *s == '#')
			continue;
		if (*s == '[' && e[-1] == ']') {
			const char *name = s + 1, *name_end = memchr(name, ']', (size_t)(e - name));

			/* "[]": iniparser keeps the last name, cut to this line's length - 1 */
			if (name_end == name) {
				size_t keep = (size_t)(e - s) - 1;

				if (strlen(cur) > keep)
					cur[keep] = '\0';
			} else {
				trim(&name, &name_end);
				memcpy(cur, name, (size_t)(name_end - name));
				cur[name_end - name] = '\0';
			}
			if (key == NULL && strcasecmp(cur, section) == 0 && nth-- == 0)
				return first;
		} else if (key != NULL && strcasecmp(cur, section) == 0) {
			const char *eq = memchr(s, '=', (size_t)(e - s));

			if (eq != NULL) {
				trim(&s, &eq);
				if ((size_t)(eq - s) == strlen(key) &&
				    strncasecmp(s, key, strlen(key)) == 0 && nth-- == 0)
					return first;
			}
		}
	}
	return 0;
}

static int
find_line(const char *buf, const char *section, const char *key)
{
	return find_nth_line(buf, section, key, 0);
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
	const char *path;
	const char *buf;
	char *err;
};

static vk_rc
bad_value(const struct ctx *c, const char *sec, const char *key, const char *why)
{
	vk_seterr(c->err, "%s:%d: [%s] %s: %s", c->path, find_line(c->buf, sec, key), sec, key,
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
		vk_seterr(c->err, "%s:%d: unknown key \"%s\" in [sync]", c->path,
		          find_line(c->buf, "sync", key), key);
		return VK_ERR_USAGE;
	}
	return VK_OK;
}

/* One "section:key = value" entry. */
static vk_rc
apply(struct vk_config *cfg, const struct ctx *c, const char *sec, const char *key, const char *v)
{
	int n, again = find_nth_line(c->buf, sec, key, 1);

	/* iniparser keeps the last of two; a silent override could lower a required role */
	if (again != 0) {
		vk_seterr(c->err, "%s:%d: [%s] %s is already set on line %d", c->path, again, sec,
		          key, find_line(c->buf, sec, key));
		return VK_ERR_USAGE;
	}

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
		vk_seterr(c->err, "%s:%d: unknown key \"%s\" in [%s]", c->path,
		          find_line(c->buf, sec, key), key, sec);
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

static vk_rc
apply_dictionary(struct vk_config *cfg, const struct ctx *c, dictionary *d)
{
	int nsec = iniparser_getnsec(d);

	/*
	 * iniparser lists neither keys above the first section (it stores them
	 * as ":key", with a value, where a section has none) nor sections whose
	 * name holds ':'; refuse those first.
	 */
	for (ssize_t i = 0; i < d->size; i++) {
		const char *k = d->key[i];

		if (k != NULL && k[0] == ':' && d->val[i] != NULL) {
			vk_seterr(c->err, "%s:%d: key \"%s\" is outside any [section]", c->path,
			          find_line(c->buf, "", k + 1), k + 1);
			return VK_ERR_USAGE;
		}
		if (k != NULL && d->val[i] == NULL && strchr(k, ':') != NULL) {
			vk_seterr(c->err, "%s:%d: unknown section [%s]", c->path,
			          find_line(c->buf, k, NULL), k);
			return VK_ERR_USAGE;
		}
	}
	for (int i = 0; i < nsec; i++) {
		const char *sec = iniparser_getsecname(d, i);
		int nkeys = iniparser_getsecnkeys(d, sec);
		const char **keys;
		vk_rc rc = VK_OK;

		if (!known_section(sec)) {
			vk_seterr(c->err, "%s:%d: unknown section [%s]", c->path,
			          find_line(c->buf, sec, NULL), sec);
			return VK_ERR_USAGE;
		}
		if (nkeys <= 0)
			continue;
		if ((keys = calloc((size_t)nkeys, sizeof *keys)) == NULL) {
			vk_seterr(c->err, "out of memory");
			return VK_ERR_NOMEM;
		}
		iniparser_getseckeys(d, sec, keys);
		for (int k = 0; k < nkeys && rc == VK_OK; k++) {
			const char *key = keys[k] + strlen(sec) + 1; /* "section:key" */
			const char *v = iniparser_getstring(d, keys[k], "");

			rc = apply(cfg, c, sec, key, v);
		}
		free(keys);
		if (rc != VK_OK)
			return rc;
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
	char procpath[64];
	char *buf = NULL;
	dictionary *d = NULL;
	int fd = -1, missing;
	vk_rc rc;

	if ((rc = set_defaults(cfg, err)) != VK_OK)
		return rc;
	if ((rc = open_checked(path, &fd, &buf, &missing, err)) != VK_OK || missing)
		return rc;

	snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fd);
	parse_error[0] = '\0';
	iniparser_set_error_callback(capture_error);
	d = iniparser_load(procpath);
	iniparser_set_error_callback(NULL);
	if (d == NULL) {
		const char *at = strstr(parse_error, procpath);
		const char *what = parse_error;
		int line;

		/*
		 * iniparser says "iniparser: <what> in <file> (<line>):" about the
		 * file it opened; report the configured path instead.
		 */
		if (strncmp(what, "iniparser: ", 11) == 0)
			what += 11;
		if (at != NULL && at - what > 4 &&
		    sscanf(at + strlen(procpath), " (%d)", &line) == 1)
			vk_seterr(err, "%s:%d: %.*s", path, line, (int)(at - what - 4), what);
		else
			vk_seterr(err, "%s: cannot parse%s%s", path, parse_error[0] ? ": " : "",
			          parse_error);
		err[strcspn(err, "\n")] = '\0';
		rc = VK_ERR_USAGE;
		goto out;
	}
	rc = apply_dictionary(cfg, &(struct ctx){path, buf, err}, d);
out:
	if (d != NULL)
		iniparser_freedict(d);
	free(buf);
	close(fd);
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
