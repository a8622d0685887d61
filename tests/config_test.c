/*
 * config_test.c - viamkey.conf (config.h).
 */
#include "autoconfig.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fixture.h"

struct cfg_fx {
	char *dir;
	char *path;
	struct vk_config cfg;
	char err[VK_ERRLEN];
};

static int
setup(void **state)
{
	struct cfg_fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = fx_tmpdir();
	f->path = fx_join(f->dir, "viamkey.conf");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct cfg_fx *f = *state;

	vk_config_free(&f->cfg);
	fx_rmtree(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static vk_rc
load(struct cfg_fx *f)
{
	vk_config_free(&f->cfg);
	f->err[0] = '\0';
	return vk_config_load(f->path, &f->cfg, f->err);
}

static vk_rc
load_text(struct cfg_fx *f, const char *text)
{
	fx_write_str(f->path, 0600, text);
	return load(f);
}

static void
assert_err_contains(const struct cfg_fx *f, const char *needle)
{
	if (strstr(f->err, needle) == NULL)
		fail_msg("\"%s\" not in \"%s\"", needle, f->err);
}

/* text is refused with a message that starts "<path>:<line>:" and mentions needle. */
static void
expect_refused_at(struct cfg_fx *f, const char *text, int line, const char *needle)
{
	char where[PATH_MAX + 16];

	if (load_text(f, text) != VK_ERR_USAGE)
		fail_msg("accepted:\n%s", text);
	snprintf(where, sizeof where, "%s:%d: ", f->path, line);
	if (strncmp(f->err, where, strlen(where)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", f->err, where);
	assert_err_contains(f, needle);
}

static void
expect_defaults(const struct vk_config *cfg)
{
	assert_string_equal(cfg->store_path, VK_LOCALSTATEDIR "/lib/viamkey/keys.db");
	assert_int_equal(cfg->busy_timeout_ms, 100);
	assert_null(cfg->machine_id);
	assert_int_equal(cfg->pam_role, VK_ROLE_NONE);
	assert_string_equal(cfg->prompt, "API key: ");
	assert_int_equal(cfg->fail_delay_ms, 2000);
	assert_int_equal(cfg->last_used_interval, 60);
	assert_int_equal(cfg->audit_keep, 90 * 86400);
	assert_int_equal(cfg->sync.end_sessions, 1);
	assert_int_equal(cfg->nservices, 0);
}

static void
test_every_key_parsed(void **state)
{
	struct cfg_fx *f = *state;

	assert_int_equal(load_text(f, "; viamkey\n"
	                              "[store]\n"
	                              "path = /srv/viamkey/keys.db\n"
	                              "busy_timeout_ms = 60000\n"
	                              "[machine]\n"
	                              "id = 3f2504e0-4f89-41d3-9a0c-0305e82c3301  ; this host\n"
	                              "[pam]\n"
	                              "role = viewer\n"
	                              "prompt = \"Viam key: \"\n"
	                              "fail_delay_ms = 0\n"
	                              "[services]\n"
	                              "sudo = owner\n"
	                              "sshd = operator\n"
	                              "[audit]\n"
	                              "last_used_interval = 0\n"
	                              "keep = 2w\n"
	                              "[sync]\n"
	                              "end_sessions = no\n"),
	                 VK_OK);
	assert_string_equal(f->cfg.store_path, "/srv/viamkey/keys.db");
	assert_int_equal(f->cfg.busy_timeout_ms, 60000);
	assert_string_equal(f->cfg.machine_id, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
	assert_int_equal(f->cfg.pam_role, VK_ROLE_VIEWER);
	assert_string_equal(f->cfg.prompt, "Viam key: ");
	assert_int_equal(f->cfg.fail_delay_ms, 0);
	assert_int_equal(f->cfg.last_used_interval, 0);
	assert_int_equal(f->cfg.audit_keep, 14 * 86400);
	assert_int_equal(f->cfg.sync.end_sessions, 0);
	assert_int_equal(f->cfg.nservices, 2);
	assert_int_equal(vk_config_required_role(&f->cfg, "sudo", VK_ROLE_NONE), VK_ROLE_OWNER);
	assert_int_equal(vk_config_required_role(&f->cfg, "sshd", VK_ROLE_NONE), VK_ROLE_OPERATOR);
}

static void
test_missing_or_empty_file_gives_defaults(void **state)
{
	struct cfg_fx *f = *state;

	assert_int_equal(load(f), VK_OK);
	expect_defaults(&f->cfg);
	assert_int_equal(load_text(f, ""), VK_OK);
	expect_defaults(&f->cfg);
	assert_int_equal(load_text(f, "; nothing but a comment\n\n"), VK_OK);
	expect_defaults(&f->cfg);
}

static void
test_unknown_section_or_key_refused_with_line(void **state)
{
	struct cfg_fx *f = *state;

	expect_refused_at(f, "[store]\npath = /x\n\n[bogus]\nfoo = 1\n", 4, "[bogus]");
	expect_refused_at(f, "[store]\npath = /x\n[empty]\n", 3, "[empty]");
	expect_refused_at(f, "[store]\n; comment\npath = /x\nbogus_key = 1\n", 4, "bogus_key");
	expect_refused_at(f, "[pam]\nrole = owner\n[store]\npath = /x\n[pam]\n  bogus=1\n", 6,
	                  "bogus");
	expect_refused_at(f, "[machine]\nname = m1\n", 2, "name");
	/* a long name is shown cut, and the message still says why */
	expect_refused_at(f, "[services]\nservice-with-a-name-longer-than-forty-bytes = admin\n", 2,
	                  "[services] service-with-a-name-longer-than-forty-by...: must be");
	expect_refused_at(f, "[sync]\nkey-with-a-name-longer-than-forty-bytes-too = 1\n", 2,
	                  "unknown key \"key-with-a-name-longer-than-forty-bytes-...\" in [sync]");
	expect_refused_at(f, "[store]\nkey-with-a-name-longer-than-forty-bytes-too = 1\n", 2,
	                  "\"key-with-a-name-longer-than-forty-bytes-...\" in [store]");
	expect_refused_at(f, "[section-with-a-name-longer-than-forty-bytes]\n", 1,
	                  "unknown section [section-with-a-name-longer-than-forty-by...]");
	/* iniparser lists neither of these under any section */
	expect_refused_at(f, "role = owner\n[pam]\nprompt = x\n", 1, "role");
	expect_refused_at(f, "[pam]\nprompt = x\n[store:x]\npath = /y\n", 3, "section name");
}

static void
test_bad_values_refused_with_line(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *needle;
	} cases[] = {
	    {"[store]\nbusy_timeout_ms = abc\n", 2, "busy_timeout_ms"},
	    {"[store]\nbusy_timeout_ms = 60001\n", 2, "busy_timeout_ms"},
	    {"[store]\nbusy_timeout_ms = -1\n", 2, "busy_timeout_ms"},
	    {"[store]\nbusy_timeout_ms = 10ms\n", 2, "busy_timeout_ms"},
	    {"[store]\nbusy_timeout_ms =\n", 2, "busy_timeout_ms"},
	    {"[store]\npath = var/lib/viamkey/keys.db\n", 2, "absolute"},
	    {"[machine]\nid = not-a-uuid\n", 2, "UUID"},
	    {"[machine]\nid = 3F2504E0-4F89-41D3-9A0C-0305E82C3301\n", 2, "UUID"},
	    {"[machine]\nid = 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n", 2, "UUID"},
	    {"[pam]\nrole = admin\n", 2, "role"},
	    {"[pam]\nfail_delay_ms = soon\n", 2, "fail_delay_ms"},
	    {"[pam]\nprompt = \"\"\n", 2, "prompt"},
	    {"[audit]\nlast_used_interval = -5\n", 2, "last_used_interval"},
	    {"[audit]\nkeep = forever\n", 2, "keep"},
	    {"[audit]\nkeep = 0\n", 2, "keep"},
	    {"[sync]\nend_sessions = 1\n", 2, "end_sessions"},
	    {"[services]\nsudo = root\n", 2, "sudo"},
	    {"; site config\n\n[store]\npath = /var/lib/viamkey/keys.db\n\n[pam]\n# role\n"
	     "role = admin\n",
	     8, "role"},
	    {"[pam]\n\n   role   =   superuser   \n", 3, "role"},
	};
	struct cfg_fx *f = *state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_refused_at(f, cases[i].text, cases[i].line, cases[i].needle);
}

static void
test_syntax_error_reported(void **state)
{
	struct cfg_fx *f = *state;

	expect_refused_at(f, "[store]\npath = /x\nthis is not ini\n", 3, "syntax error");
	assert_null(strstr(f->err, "/proc/self"));
	expect_refused_at(f, "[pam]\nrole = owner\n[store\n", 3, "syntax error");
}

static void
expect_unsafe(struct cfg_fx *f, const char *needle)
{
	assert_int_equal(load(f), VK_ERR_STORE);
	assert_err_contains(f, f->path);
	assert_err_contains(f, needle);
}

static void
test_writable_by_others_refused(void **state)
{
	static const mode_t unsafe[] = {0620, 0602, 0660, 0666, 0622};
	struct cfg_fx *f = *state;

	for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
		fx_write_str(f->path, unsafe[i], "[pam]\nrole = owner\n");
		expect_unsafe(f, "chmod");
	}
	fx_write_str(f->path, 0644, "[pam]\nrole = owner\n");
	assert_int_equal(load(f), VK_OK);
	assert_int_equal(f->cfg.pam_role, VK_ROLE_OWNER);
}

static void
test_owner_other_than_root_refused(void **state)
{
	struct cfg_fx *f = *state;

	if (geteuid() != 0)
		fx_skip("only root can give a file away");
	fx_write_str(f->path, 0600, "[pam]\nrole = owner\n");
	assert_int_equal(chown(f->path, 1, 1), 0);
	expect_unsafe(f, "owned by uid 1");
}

static void
test_symlink_refused(void **state)
{
	struct cfg_fx *f = *state;
	char *real = fx_join(f->dir, "real.conf");

	fx_write_str(real, 0600, "[pam]\nrole = owner\n");
	assert_int_equal(symlink(real, f->path), 0);
	expect_unsafe(f, "symbolic link");
	free(real);
}

static void
test_not_a_regular_file_refused(void **state)
{
	struct cfg_fx *f = *state;

	assert_int_equal(mkdir(f->path, 0700), 0);
	expect_unsafe(f, "not a regular file");
	assert_int_equal(rmdir(f->path), 0);

	/* a FIFO must be refused, not waited on */
	assert_int_equal(mkfifo(f->path, 0600), 0);
	alarm(5);
	expect_unsafe(f, "not a regular file");
	alarm(0);
}

/* A valid file of exactly size bytes: one section and comment lines. */
static void
write_sized(const char *path, size_t size)
{
	static const char head[] = "[pam]\nrole = owner\n";
	char *buf = malloc(size);

	assert_non_null(buf);
	memset(buf, ';', size);
	memcpy(buf, head, sizeof head - 1);
	for (size_t i = sizeof head - 1 + 80; i < size; i += 81)
		buf[i] = '\n';
	buf[size - 1] = '\n';
	fx_write(path, 0600, buf, size);
	free(buf);
}

static void
test_size_limit(void **state)
{
	struct cfg_fx *f = *state;

	write_sized(f->path, VK_CONFIG_MAX_SIZE);
	assert_int_equal(load(f), VK_OK);
	assert_int_equal(f->cfg.pam_role, VK_ROLE_OWNER);
	write_sized(f->path, VK_CONFIG_MAX_SIZE + 1);
	expect_unsafe(f, "larger than 65536 bytes");
}

static void
test_nul_byte_refused(void **state)
{
	static const char text[] = "[pam]\nrole = owner\0\n";
	struct cfg_fx *f = *state;

	fx_write(f->path, 0600, text, sizeof text - 1);
	expect_unsafe(f, "NUL");
}

static void
test_required_role_precedence(void **state)
{
	struct cfg_fx *f = *state;
	const struct vk_config *c = &f->cfg;

	assert_int_equal(load(f), VK_OK); /* no file */
	assert_int_equal(vk_config_required_role(c, "sudo", VK_ROLE_NONE), VK_ROLE_OPERATOR);
	assert_int_equal(vk_config_required_role(c, NULL, VK_ROLE_NONE), VK_ROLE_OPERATOR);
	assert_int_equal(vk_config_required_role(c, "sudo", VK_ROLE_VIEWER), VK_ROLE_VIEWER);

	assert_int_equal(load_text(f, "[services]\nsudo = viewer\n"), VK_OK);
	assert_int_equal(vk_config_required_role(c, "sudo", VK_ROLE_NONE), VK_ROLE_VIEWER);
	assert_int_equal(vk_config_required_role(c, "sshd", VK_ROLE_NONE), VK_ROLE_OPERATOR);

	assert_int_equal(load_text(f, "[pam]\nrole = viewer\n[services]\nsudo = owner\n"
	                              "sshd = operator\n"),
	                 VK_OK);
	assert_int_equal(vk_config_required_role(c, "sudo", VK_ROLE_NONE), VK_ROLE_OWNER);
	assert_int_equal(vk_config_required_role(c, "sshd", VK_ROLE_NONE), VK_ROLE_OPERATOR);
	assert_int_equal(vk_config_required_role(c, "login", VK_ROLE_NONE), VK_ROLE_VIEWER);
	assert_int_equal(vk_config_required_role(c, NULL, VK_ROLE_NONE), VK_ROLE_VIEWER);
	assert_int_equal(vk_config_required_role(c, "sudo", VK_ROLE_VIEWER), VK_ROLE_VIEWER);
	assert_int_equal(vk_config_required_role(c, "login", VK_ROLE_OWNER), VK_ROLE_OWNER);
}

/*
 * A key set twice is refused however it is spelled, since iniparser would
 * keep the last value and could quietly lower a required role.
 */
static void
test_key_set_twice_refused(void **state)
{
	struct cfg_fx *f = *state;

	expect_refused_at(f, "[services]\nsudo = owner\nSUDO = viewer\n", 3,
	                  "already set on line 2");
	expect_refused_at(f, "[services]\nsudo = owner\n[ services ]\nsudo = viewer\n", 4,
	                  "already set on line 2");
	/* a line that iniparser would join to the next one is refused as such */
	expect_refused_at(f, "[services]\nsudo = owner\nsu\\\ndo = viewer\n", 3, "may not end in");
	/* a header with trailing text is refused too (as a syntax error) */
	assert_int_equal(load_text(f, "[pam]\nrole = owner\n[pam]x\nrole = viewer\n"),
	                 VK_ERR_USAGE);
	assert_int_equal(load_text(f, "[services]\nsudo = owner\nsshd = viewer\n"), VK_OK);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_every_key_parsed),
	    TEST(test_missing_or_empty_file_gives_defaults),
	    TEST(test_unknown_section_or_key_refused_with_line),
	    TEST(test_bad_values_refused_with_line),
	    TEST(test_syntax_error_reported),
	    TEST(test_writable_by_others_refused),
	    TEST(test_owner_other_than_root_refused),
	    TEST(test_symlink_refused),
	    TEST(test_not_a_regular_file_refused),
	    TEST(test_size_limit),
	    TEST(test_nul_byte_refused),
	    TEST(test_required_role_precedence),
	    TEST(test_key_set_twice_refused),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
