/*
 * complete.c - `keyadm --complete [--] WORD... CURRENT`, the candidates
 * for shell completion (data/bash-completion/keyadm).
 *
 * The nouns, verbs and options come from the command tables (commands.c)
 * and the option table (options.c) that dispatch and --help use, so a
 * command or an option added there completes without a change here. Only
 * the kinds of option values (a file, a user, a role) are listed here; an
 * option missing from value_kinds[] completes no value.
 *
 * The words are those before the cursor, the command name left out; the
 * last is the one being completed, "" at a fresh word. The first line
 * printed is the kind of candidate: "words", then one candidate per line
 * that starts with CURRENT; or "files" or "users", which the shell lists
 * itself; or "none". It never touches the config or the store.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "keyadm.h"

#define MAX_WORDS 16 /* of a command's name */

static const struct {
	const char *option;
	const char *kind; /* "files", "users" or "roles" */
} value_kinds[] = {
    {"config", "files"},
    {"db", "files"},
    {"user", "users"},
    {"role", "roles"},
};

struct completion {
	const char *cur;            /* the word being completed, less any "--opt=" */
	const char *pos[MAX_WORDS]; /* the words before it that are not options */
	size_t npos;
	unsigned char given[256]; /* options already on the line, by index in options */
	char shown[64][32];       /* the command words printed, each once */
	size_t nshown;
};

/* The option named by word ("--name" or "--name=value"), or NULL. */
static const struct option *
find_option(const char *word)
{
	size_t len;

	if (strncmp(word, "--", 2) != 0 || word[2] == '\0')
		return NULL;
	word += 2;
	len = strcspn(word, "=");
	for (const struct option *o = ka_options; o->name != NULL; o++)
		if (strlen(o->name) == len && strncmp(o->name, word, len) == 0)
			return o;
	return NULL;
}

/* The words of a command's name, "machines api-key create" as three. */
static size_t
command_words(const struct ka_command *c, char buf[64], const char *out[MAX_WORDS])
{
	size_t n = 0;
	char *save = NULL;

	ka_command_name(c, buf, 64);
	for (char *w = strtok_r(buf, " ", &save); w != NULL && n < MAX_WORDS;
	     w = strtok_r(NULL, " ", &save))
		out[n++] = w;
	return n;
}

static void
candidate(const struct completion *cp, const char *word)
{
	if (strncmp(word, cp->cur, strlen(cp->cur)) == 0)
		printf("%s\n", word);
}

/* A word of a command's name, once: "api-key" starts three commands of a noun. */
static void
next_word(struct completion *cp, const char *word)
{
	for (size_t i = 0; i < cp->nshown; i++)
		if (strcmp(cp->shown[i], word) == 0)
			return;
	if (cp->nshown < sizeof cp->shown / sizeof cp->shown[0])
		snprintf(cp->shown[cp->nshown++], sizeof cp->shown[0], "%s", word);
	candidate(cp, word);
}

static int
value(const struct completion *cp, const struct option *o)
{
	const char *kind = "none";

	for (size_t i = 0; i < sizeof value_kinds / sizeof value_kinds[0]; i++)
		if (strcmp(o->name, value_kinds[i].option) == 0)
			kind = value_kinds[i].kind;
	if (strcmp(kind, "roles") != 0) {
		printf("%s\n", kind);
		return KA_OK;
	}
	printf("words\n");
	for (vk_role r = VK_ROLE_OWNER; r >= VK_ROLE_VIEWER; r--)
		candidate(cp, vk_role_name(r));
	return KA_OK;
}

/* Options of cmd (or only the global ones, without a command) not yet given. */
static void
options(const struct completion *cp, const struct ka_command *cmd)
{
	char buf[64];

	for (const struct option *o = ka_options; o->name != NULL; o++) {
		int global = o->val > O_COUNT;

		if (!global && (cmd == NULL || (cmd->opts & OPT(o->val)) == 0))
			continue;
		if (cp->given[o - ka_options] && o->val != O_USER)
			continue;
		snprintf(buf, sizeof buf, "--%s", o->name);
		candidate(cp, buf);
	}
}

int
ka_complete(int argc, char **argv)
{
	struct completion cp;
	const struct ka_command *cmd = NULL;
	const struct option *o;
	int last;

	memset(&cp, 0, sizeof cp);
	if (argc > 0 && strcmp(argv[0], "--") == 0)
		argc--, argv++;
	if (argc < 1) {
		printf("none\n");
		return KA_USAGE;
	}
	last = argc - 1;
	cp.cur = argv[last];

	for (int i = 0; i < last; i++) {
		if ((o = find_option(argv[i])) != NULL) {
			if (o - ka_options < (long)sizeof cp.given)
				cp.given[o - ka_options] = 1;
			if (o->has_arg == required_argument && strchr(argv[i], '=') == NULL) {
				if (i + 1 == last)
					return value(&cp, o);
				i++; /* its value */
			}
		} else if (argv[i][0] != '-' && cp.npos < MAX_WORDS) {
			cp.pos[cp.npos++] = argv[i];
		}
	}
	if ((o = find_option(cp.cur)) != NULL && strchr(cp.cur, '=') != NULL) {
		cp.cur = strchr(cp.cur, '=') + 1;
		return o->has_arg == no_argument ? (printf("none\n"), KA_OK) : value(&cp, o);
	}

	printf("words\n");
	/* The next word of every command whose name starts with the words typed. */
	for (size_t t = 0; ka_command_tables[t] != NULL; t++) {
		for (const struct ka_command *c = ka_command_tables[t]; c->noun != NULL; c++) {
			const char *words[MAX_WORDS];
			char buf[64];
			size_t n = command_words(c, buf, words), i;

			for (i = 0; i < cp.npos && i < n; i++)
				if (strcmp(words[i], cp.pos[i]) != 0)
					break;
			if (i < cp.npos)
				continue;
			if (n == cp.npos)
				cmd = c;
			else if (cp.cur[0] != '-')
				next_word(&cp, words[cp.npos]);
		}
	}
	if (cp.cur[0] == '-' || (cmd != NULL && cp.cur[0] == '\0'))
		options(&cp, cmd);
	return KA_OK;
}
