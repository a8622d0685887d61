/*
 * config.h - viamkey.conf, read with common/ini.c (iniparser's format).
 *
 * The file MUST be a regular file owned by root or the euid, not writable
 * by group or others, at most 64 KiB, and is opened with O_NOFOLLOW. A
 * missing file means the built-in defaults. Unknown sections or keys are
 * errors reported with file and line.
 */
#ifndef VK_CONFIG_H
#define VK_CONFIG_H

#include "vk.h"

#define VK_DEFAULT_CONFIG       VK_SYSCONFDIR "/viamkey/viamkey.conf"
#define VK_DEFAULT_STORE        VK_LOCALSTATEDIR "/lib/viamkey/keys.db"
#define VK_DEFAULT_PROMPT       "API key: "
#define VK_DEFAULT_SIGNING_KEY  VK_SYSCONFDIR "/viamkey/signing.key"
#define VK_DEFAULT_ACCOUNT_KEY  VK_SYSCONFDIR "/viamkey/bus.nk"
#define VK_DEFAULT_SYSTEM_CREDS VK_SYSCONFDIR "/viamkey/system.creds"
#define VK_DEFAULT_BUCKET       "viamkey"
#define VK_CONFIG_MAX_SIZE      65536

struct vk_service_role {
	char *service;
	vk_role role;
};

/* [sync]: the fleet (SPEC §8). Strings are NULL when not set. */
struct vk_sync_config {
	char *servers;     /* comma-separated NATS URLs, as written */
	char *bucket;      /* the Key-Value bucket, default "viamkey" */
	char *credentials; /* a NATS .creds file */
	char *user;        /* or a user and a file holding the password */
	char *password_file;
	char *authority_key;        /* machines: the authority's Ed25519 public key, base64 */
	char *root_key;             /* or the fleet's root (SPEC §10), which certifies it */
	char *signing_key;          /* the authority: its signing key file */
	char *account_key;          /* and its bus keys (SPEC §9, busid.h), */
	char *system_credentials;   /* and the system account's user, to send them */
	char *metrics_file;         /* the daemon's figures (SPEC §11), or NULL */
	int64_t heartbeat_interval; /* seconds, default 10 */
	int64_t resync_interval;    /* seconds, default 600 */
	int64_t max_staleness;      /* seconds; 0 (the default): off */
	int replicas;               /* of the bucket, when the authority creates it; default 3 */
	int end_sessions;           /* end a session its key could no longer open; default 1 */
};

struct vk_config {
	char *store_path;                 /* [store] path */
	int busy_timeout_ms;              /* [store] busy_timeout_ms, default 100 */
	char *machine_id;                 /* [machine] id, or NULL */
	vk_role pam_role;                 /* [pam] role, or VK_ROLE_NONE */
	char *prompt;                     /* [pam] prompt */
	int fail_delay_ms;                /* [pam] fail_delay_ms, default 2000 */
	int last_used_interval;           /* [audit] last_used_interval, default 60 */
	int64_t audit_keep;               /* [audit] keep: seconds events are kept, default 90d */
	struct vk_service_role *services; /* [services] */
	size_t nservices;
	struct vk_sync_config sync; /* [sync] */
};

/*
 * Loads path into cfg (which need not be initialised). On error returns
 * VK_ERR_STORE (unsafe or unreadable file), VK_ERR_USAGE (syntax, unknown
 * key, bad value) or VK_ERR_NOMEM, with a message naming file and line.
 * cfg is always safe to pass to vk_config_free() afterwards.
 */
vk_rc vk_config_load(const char *path, struct vk_config *cfg, char err[VK_ERRLEN]);

void vk_config_free(struct vk_config *cfg);

/*
 * The required role for a login: `arg` when set, else [services] for the
 * service, else [pam] role, else operator.
 */
vk_role vk_config_required_role(const struct vk_config *cfg, const char *service, vk_role arg);

#endif
