/*
 * commands.c - the table of every keyadm command, which dispatch, --help
 * and --complete all read, and the --help text made from it.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "keyadm.h"

const struct ka_command *const ka_command_tables[] = {
    ka_tree_commands, ka_key_commands,       ka_check_commands, ka_session_commands,
    ka_sync_commands, ka_authority_commands, ka_bus_commands,   NULL,
};

const struct ka_command *
ka_find_command(int argc, char **argv, int *consumed)
{
	for (size_t t = 0; ka_command_tables[t] != NULL; t++) {
		for (const struct ka_command *c = ka_command_tables[t]; c->noun != NULL; c++) {
			char verb[32];
			int words = 1;

			if (argc < 1 || strcmp(argv[0], c->noun) != 0)
				continue;
			if (c->verb != NULL) {
				/* a verb of two words: "api-key create", "join-tokens list" */
				if (strchr(c->verb, ' ') != NULL && argc >= 3)
					snprintf(verb, sizeof verb, "%s %s", argv[1], argv[2]),
					    words = 3;
				else if (strchr(c->verb, ' ') == NULL && argc >= 2)
					snprintf(verb, sizeof verb, "%s", argv[1]), words = 2;
				else
					continue;
				if (strcmp(verb, c->verb) != 0)
					continue;
			}
			*consumed = words;
			return c;
		}
	}
	return NULL;
}

void
ka_print_help(const struct ka_command *only)
{
	char name[64];

	if (only == NULL)
		printf("Usage: keyadm [--config FILE] [--db FILE] [--json] COMMAND [OPTIONS]\n\n"
		       "Manage viamkey's scoped API keys and their store.\n\nCommands:\n");
	for (size_t t = 0; ka_command_tables[t] != NULL; t++) {
		for (const struct ka_command *c = ka_command_tables[t]; c->noun != NULL; c++) {
			if (only != NULL && c != only)
				continue;
			ka_command_name(c, name, sizeof name);
			if (only != NULL)
				printf("Usage: keyadm %s %s\n\n%s\n", name, c->usage, c->help);
			else
				printf("  %-28s %s\n", name, c->help);
		}
	}
	printf("\nGlobal options, anywhere on the line:\n"
	       "  --config FILE   config file (default %s, or $VIAMKEY_CONFIG)\n"
	       "  --db FILE       store, overriding [store] path\n"
	       "  --json          print one JSON document\n"
	       "  --help          this help; after a command, that command's\n"
	       "  --version       print the version\n"
	       "Exit status: 0 success (check: allow), 1 refused or failed (check: deny),"
	       " 2 usage error.\nSee keyadm(8).\n",
	       VK_DEFAULT_CONFIG);
}
