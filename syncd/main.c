/*
 * main.c - viamkey-syncd: the fleet's daemon (SPEC §8, viamkey-syncd(8)).
 *
 *   viamkey-syncd [--config FILE] [--once] [--verbose]
 *   viamkey-syncd join ...   (join.c: a new host joins the fleet)
 *
 * On the authority (the store keyadm authority init made one) it
 * publishes; on a machine ([machine] id and [sync] authority_key set) it
 * follows its scopes into its replica. It runs in the foreground and logs
 * to syslog (and, with --verbose, to stderr too, each line with its time).
 * --once does one full pass and exits: 0 once the authority has published
 * everything pending, or once a machine's replica matches the bus; 1 when
 * that could not be done within a minute. Stopped by SIGTERM or SIGINT, it exits 0.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "log.h"
#include "store.h"
#include "syncd.h"

/*
 * SIGTERM and SIGINT are blocked in every thread and taken here, by
 * sigwait(): a thread may then wake the main thread at once, where a
 * handler could only set a flag that a long wait would not see.
 */
static void *
on_signals(void *set)
{
	int sig;

	while (sigwait(set, &sig) == 0)
		sd_request_stop();
	return NULL;
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "Usage: viamkey-syncd [--config FILE] [--once] [--verbose]\n"
	        "       viamkey-syncd join --token-file FILE [--name NAME] ... (join --help)\n\n"
	        "The viamkey fleet's daemon: on the authority it publishes the store's\n"
	        "changes to the bus; on a machine it follows them into the replica.\n"
	        "  --config FILE  config file (default %s, or $VIAMKEY_CONFIG)\n"
	        "  --once         one full pass, then exit (0: done)\n"
	        "  --verbose      also log to stderr, and log every record applied\n"
	        "See viamkey-syncd(8).\n",
	        VK_DEFAULT_CONFIG);
}

/* The job this host has: the authority publishes, a standby follows all, a machine its own. */
static enum vk_fleet_role
role_of(const char *store)
{
	enum vk_fleet_role role = VK_FLEET_STANDALONE;
	char err[VK_ERRLEN];
	sqlite3 *db;

	if (vk_store_open(store, VK_OPEN_ADMIN, 5000, &db, err) != VK_OK)
		return VK_FLEET_STANDALONE;
	(void)vk_fleet_role(db, &role, err);
	sqlite3_close(db);
	return role;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'}, {"once", no_argument, NULL, 'o'},
	    {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	const char *config = getenv("VIAMKEY_CONFIG");
	static sigset_t stop_signals;
	struct vk_config cfg;
	pthread_t signals;
	char err[VK_ERRLEN];
	int c, once = 0, verbose = 0, status;

	if (argc > 1 && strcmp(argv[1], "join") == 0) {
		openlog("viamkey-syncd", LOG_PID, LOG_DAEMON);
		if (sodium_init() < 0) {
			sd_log(LOG_ERR, "cannot initialise libsodium");
			return 1;
		}
		signal(SIGPIPE, SIG_IGN);
		return sd_join(argc - 1, argv + 1);
	}
	if (config == NULL || *config == '\0')
		config = VK_DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'o':
			once = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("viamkey-syncd (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	openlog("viamkey-syncd", LOG_PID, LOG_DAEMON);
	sd_log_verbose(verbose);
	if (sodium_init() < 0) {
		sd_log(LOG_ERR, "cannot initialise libsodium");
		return 1;
	}
	if (vk_config_load(config, &cfg, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return 1;
	}
	/* before any thread starts: they all inherit the mask */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 ||
	    pthread_create(&signals, NULL, on_signals, &stop_signals) != 0) {
		sd_log(LOG_ERR, "cannot set up the signal thread");
		vk_config_free(&cfg);
		return 1;
	}
	pthread_detach(signals);
	signal(SIGPIPE, SIG_IGN);
	do {
		switch (role_of(cfg.store_path)) {
		case VK_FLEET_AUTHORITY:
			status = sd_authority(&cfg, cfg.store_path, once);
			break;
		case VK_FLEET_STANDBY:
			status = sd_standby(&cfg, cfg.store_path, once);
			break;
		default:
			status = sd_machine(&cfg, cfg.store_path, once);
		}
		/* a pause, so that a bus that closes every connection is not hammered */
		if (status == SD_RECONNECT && !sd_stop)
			sleep(1);
	} while (status == SD_RECONNECT && !sd_stop);
	/* stopped by SIGTERM or SIGINT, as systemctl stop does: a clean end */
	if (sd_stop && !once)
		status = 0;
	vk_config_free(&cfg);
	return status;
}
