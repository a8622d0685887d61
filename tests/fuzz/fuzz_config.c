/*
 * fuzz_config.c - libFuzzer target for viamkey.conf.
 *
 * Input: a whole config file. It is written to one private file (0600,
 * owned by the euid, made once) and loaded with vk_config_load(). Whatever
 * the bytes, loading must not crash or leak; an error must name the file,
 * and a line of it if any; a config that loads must hold only values that
 * passed validation, and must be refused once any key it set is set again.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"
#include "token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *path;
static int fd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fz_setup();
	path = fz_path("viamkey.conf.XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		fz_die("cannot create %s", path);
	return 0;
}

static int
role_valid(vk_role r)
{
	return r == VK_ROLE_VIEWER || r == VK_ROLE_OPERATOR || r == VK_ROLE_OWNER;
}

static void
check_loaded(const struct vk_config *cfg)
{
	vk_role fallback = cfg->pam_role != VK_ROLE_NONE ? cfg->pam_role : VK_ROLE_OPERATOR;
	size_t n;

	FZ_CHECK(cfg->store_path != NULL && cfg->store_path[0] == '/');
	FZ_CHECK(cfg->busy_timeout_ms >= 0 && cfg->busy_timeout_ms <= 60000);
	FZ_CHECK(cfg->fail_delay_ms >= 0 && cfg->fail_delay_ms <= 60000);
	FZ_CHECK(cfg->last_used_interval >= 0);
	FZ_CHECK(cfg->machine_id == NULL || vk_uuid_valid(cfg->machine_id));
	FZ_CHECK(cfg->pam_role == VK_ROLE_NONE || role_valid(cfg->pam_role));
	FZ_CHECK(cfg->prompt != NULL);
	n = strlen(cfg->prompt);
	FZ_CHECK(n >= 1 && n <= 128);
	for (size_t i = 0; i < n; i++)
		FZ_CHECK((unsigned char)cfg->prompt[i] >= 0x20 && cfg->prompt[i] != 0x7f);
	FZ_CHECK((cfg->services == NULL) == (cfg->nservices == 0));
	for (size_t i = 0; i < cfg->nservices; i++) {
		FZ_CHECK(cfg->services[i].service != NULL && role_valid(cfg->services[i].role));
		FZ_CHECK(role_valid(
		    vk_config_required_role(cfg, cfg->services[i].service, VK_ROLE_NONE)));
	}
	FZ_CHECK(vk_config_required_role(cfg, NULL, VK_ROLE_NONE) == fallback);
	FZ_CHECK(vk_config_required_role(cfg, "sshd", VK_ROLE_VIEWER) == VK_ROLE_VIEWER);
}

static vk_rc
load(const void *data, size_t size, struct vk_config *cfg, char err[VK_ERRLEN])
{
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		fz_die("cannot write %s", path);
	memset(err, 'x', VK_ERRLEN);
	return vk_config_load(path, cfg, err);
}

/* An error names the file and, when it gives a line, one that exists. */
static void
check_error(const uint8_t *data, size_t size, const char *err)
{
	size_t plen = strlen(path), lines = 1;
	int line;

	FZ_CHECK(memchr(err, '\0', VK_ERRLEN) != NULL);
	FZ_CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
	for (size_t i = 0; i + 1 < size; i++)
		lines += data[i] == '\n';
	if (sscanf(err + plen, ":%d:", &line) == 1)
		FZ_CHECK(line >= 1 && (size_t)line <= lines);
}

/* Whether text appended to the file starts a line of its own. */
static int
ends_cleanly(const uint8_t *data, size_t size)
{
	return size == 0 || data[size - 1] == '\n';
}

/*
 * A key set twice is refused (iniparser, whose format this is, would keep
 * the last one silently). Setting again, at the end of the file, a key
 * that the file set must therefore fail, however the file spelled it.
 */
static void
check_set_again(const uint8_t *data, size_t size, const char *sec, const char *key,
                const char *value)
{
	struct vk_config again;
	char err[VK_ERRLEN], *text;
	int n;

	if ((n = asprintf(&text, "%.*s[%s]\n%s = %s\n", (int)size, (const char *)data, sec, key,
	                  value)) < 0)
		fz_die("out of memory");
	if ((size_t)n <= VK_CONFIG_MAX_SIZE) {
		vk_rc rc = load(text, (size_t)n, &again, err);

		/* a message repeats a name cut short (vk_ini_shown); only a long path
		 * can cut it before it says why */
		if (rc != VK_ERR_USAGE || (strstr(err, " is already set on line ") == NULL &&
		                           strlen(err) < VK_ERRLEN - 1))
			fz_die("[%s] %s set twice, but: %s", sec, key,
			       rc == VK_OK ? "loaded" : err);
		vk_config_free(&again);
	}
	free(text);
}

static void
check_duplicates(const uint8_t *data, size_t size, const struct vk_config *cfg)
{
	if (!ends_cleanly(data, size))
		return;
	for (size_t i = 0; i < cfg->nservices; i++)
		check_set_again(data, size, "services", cfg->services[i].service, "owner");
	if (cfg->pam_role != VK_ROLE_NONE)
		check_set_again(data, size, "pam", "role", "owner");
	if (cfg->machine_id != NULL)
		check_set_again(data, size, "machine", "id", cfg->machine_id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vk_config cfg;
	char err[VK_ERRLEN];
	vk_rc rc = load(data, size, &cfg, err);

	if (rc == VK_OK) {
		check_loaded(&cfg);
		check_duplicates(data, size, &cfg);
	} else {
		/* a file that exists and is safe can only be refused for what it holds */
		FZ_CHECK(rc == VK_ERR_USAGE || (rc == VK_ERR_STORE && size > VK_CONFIG_MAX_SIZE) ||
		         (rc == VK_ERR_STORE && memchr(data, '\0', size) != NULL));
		check_error(data, size, err);
	}
	vk_config_free(&cfg);
	return 0;
}
