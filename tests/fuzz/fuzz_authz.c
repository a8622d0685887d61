/*
 * fuzz_authz.c - libFuzzer target for the login decision, vk_authorize().
 *
 * LLVMFuzzerInitialize() builds one store through common/ with keys of
 * every kind: organization, location and machine grants of each role,
 * several grants on one key, disabled, expired, about to expire, rotating
 * with two live secrets, rotated with the old secret retired or lapsed,
 * protected, and several users. Logins then only read it: each decision
 * opens and closes the store, as the module does, and records no last use.
 *
 * Input, one of two shapes:
 *   TOKEN \0 USER \0 SERVICE     on this host's machine ([machine] id);
 *   'T' M I L N MASK[N] USER \0 SERVICE
 *                                the fixture's token I, cut or padded to L
 *                                bytes and XORed with MASK, on machine M
 *                                (the last M is one the store lacks). This
 *                                reaches every path past the checksum even
 *                                though the fixture's tokens differ per run.
 *
 * Each decision is compared with an independent model of the fixture
 * (SPEC §2 and §6: surrounding spaces, tabs, CRs and LFs are ignored, the
 * token is judged before the machine) and, where it applies, with
 * vk_authorize_recheck().
 */
#include "autoconfig.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authz.h"
#include "config.h"
#include "fuzz_util.h"
#include "keys.h"
#include "store.h"
#include "txn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW ((int64_t)1700000000)
#define DAY ((int64_t)86400)

/* The tree: two organizations, three locations, four machines. */
enum { ORG_A, LOC_A1, HOST, M_A1B, LOC_A2, M_A2, ORG_B, LOC_B1, M_B1, NRES };

static const int parent[NRES] = {
    [ORG_A] = -1,    [LOC_A1] = ORG_A, [HOST] = LOC_A1,  [M_A1B] = LOC_A1, [LOC_A2] = ORG_A,
    [M_A2] = LOC_A2, [ORG_B] = -1,     [LOC_B1] = ORG_B, [M_B1] = LOC_B1,
};

/* Machines an input may pick; the index after the last is a machine not in the store. */
static const int machines[] = {HOST, M_A1B, M_A2, M_B1};
#define NMACHINES  (sizeof machines / sizeof machines[0])
#define NO_MACHINE (-1)

enum rotation {
	ROT_NONE,
	ROT_GRACE,  /* rotated now with a day's grace: two live secrets */
	ROT_NOW,    /* rotated now without grace: the old secret is retired */
	ROT_LAPSED, /* rotated two days ago with a day's grace: the window is over */
};

struct grant {
	vk_role role; /* VK_ROLE_NONE ends the list */
	int res;
};

#define MAX_USERS  3
#define MAX_GRANTS 3

static const struct fixture_key {
	const char *name;
	const char *users[MAX_USERS];
	struct grant grants[MAX_GRANTS];
	int disabled, protected_key;
	int64_t expires; /* relative to NOW; 0: never */
	enum rotation rotation;
} keys[] = {
    {.name = "org owner", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, ORG_A}}},
    {.name = "location operator",
     .users = {"ann", "bob", "carol@example.com"},
     .grants = {{VK_ROLE_OPERATOR, LOC_A1}}},
    {.name = "host viewer", .users = {"ann"}, .grants = {{VK_ROLE_VIEWER, HOST}}},
    {.name = "other machine", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, M_A1B}}},
    {.name = "other org", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, ORG_B}}},
    {.name = "three grants",
     .users = {"ann", "bob"},
     .grants = {{VK_ROLE_VIEWER, ORG_A}, {VK_ROLE_OWNER, M_A2}, {VK_ROLE_OPERATOR, LOC_A1}}},
    {.name = "tie",
     .users = {"ann"},
     .grants = {{VK_ROLE_OPERATOR, ORG_A}, {VK_ROLE_OPERATOR, HOST}}},
    {.name = "disabled", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, ORG_A}}, .disabled = 1},
    {.name = "expired", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, ORG_A}}, .expires = -60},
    {.name = "expires tomorrow",
     .users = {"bob"},
     .grants = {{VK_ROLE_OPERATOR, ORG_A}},
     .expires = DAY},
    {.name = "protected",
     .users = {"ann", "root"},
     .grants = {{VK_ROLE_OWNER, HOST}},
     .protected_key = 1},
    {.name = "rotating",
     .users = {"ann"},
     .grants = {{VK_ROLE_OWNER, LOC_A1}},
     .rotation = ROT_GRACE},
    {.name = "rotated", .users = {"ann"}, .grants = {{VK_ROLE_OWNER, ORG_A}}, .rotation = ROT_NOW},
    {.name = "window lapsed",
     .users = {"ann"},
     .grants = {{VK_ROLE_OPERATOR, HOST}},
     .rotation = ROT_LAPSED},
    {.name = "disabled rotating",
     .users = {"bob"},
     .grants = {{VK_ROLE_VIEWER, LOC_A2}},
     .disabled = 1,
     .rotation = ROT_GRACE},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* The config's [services] and [pam] role. */
static const struct {
	const char *name;
	vk_role role;
} services[] = {{"sudo", VK_ROLE_OWNER}, {"sshd", VK_ROLE_OPERATOR}, {"login", VK_ROLE_VIEWER}};
#define PAM_ROLE VK_ROLE_OWNER

static const char config_fmt[] = "; fuzz_authz's fixture\n"
                                 "[store]\npath = %s\nbusy_timeout_ms = 100\n"
                                 "[machine]\nid = %s\n"
                                 "[pam]\nrole = owner\n"
                                 "[services]\nsudo = owner\nsshd = operator\nlogin = viewer\n";

/* Each key's current token and, after a rotation, the previous one. */
static struct fixture_token {
	char text[VK_TOKEN_LEN + 1];
	size_t key;
	int live;
} tokens[2 * NKEYS];
static size_t ntokens;

static char res_ids[NRES][VK_UUID_STRLEN + 1];
static char key_ids[NKEYS][VK_UUID_STRLEN + 1];
static char unknown_machine[VK_UUID_STRLEN + 1];
static struct vk_config cfg;
static struct vk_login login;
static sqlite3 *db; /* while the fixture is built */

static const char *
res_type(int r)
{
	if (parent[r] < 0)
		return "organization";
	return parent[parent[r]] < 0 ? "location" : "machine";
}

static void
must(vk_rc rc, const char *what, const char *err)
{
	if (rc != VK_OK)
		fz_die("fixture: %s: %s", what, err);
}

static void
random_uuid(char out[VK_UUID_STRLEN + 1])
{
	unsigned char raw[VK_KEY_ID_BYTES];

	vk_uuid_generate(raw);
	vk_uuid_format(raw, out);
}

static void
create_tree(void)
{
	static const char *const sql[] = {
	    "INSERT INTO organizations (id, name, created_at) VALUES (?1, 'org', ?3)",
	    "INSERT INTO locations (id, org_id, name, created_at) VALUES (?1, ?2, 'loc', ?3)",
	    "INSERT INTO machines (id, location_id, name, created_at) VALUES (?1, ?2, 'm', ?3)",
	};
	char err[VK_ERRLEN];

	for (int r = 0; r < NRES; r++) {
		int depth = parent[r] < 0 ? 0 : parent[parent[r]] < 0 ? 1 : 2;

		random_uuid(res_ids[r]);
		must(vk_store_exec(db, "tree", err, NULL, sql[depth], "tti", res_ids[r],
		                   parent[r] < 0 ? NULL : res_ids[parent[r]], NOW - 7 * DAY),
		     "tree", err);
	}
	random_uuid(unknown_machine);
}

static void
add_token(const char *text, size_t key, int live)
{
	memcpy(tokens[ntokens].text, text, sizeof tokens[ntokens].text);
	tokens[ntokens].key = key;
	tokens[ntokens].live = live;
	ntokens++;
}

static void
create_key(size_t k)
{
	const struct fixture_key *fk = &keys[k];
	const struct grant *g = fk->grants;
	struct vk_txn t = {.db = db, .actor = "root", .now = NOW - 3 * DAY};
	struct vk_key_spec spec = {
	    .name = fk->name,
	    .role = g[0].role,
	    .resource_type = res_type(g[0].res),
	    .resource_id = res_ids[g[0].res],
	    .users = fk->users,
	    .expires_at = fk->expires != 0 ? NOW + fk->expires : 0,
	    .protected_key = fk->protected_key,
	};
	char token[VK_TOKEN_LEN + 1], err[VK_ERRLEN];

	while (spec.nusers < MAX_USERS && fk->users[spec.nusers] != NULL)
		spec.nusers++;
	must(vk_txn_begin(&t, err), "begin", err);
	must(vk_key_create(&t, &spec, key_ids[k], token, err), fk->name, err);
	for (size_t i = 1; i < MAX_GRANTS && g[i].role != VK_ROLE_NONE; i++)
		must(vk_store_exec(db, "grant", err, NULL,
		                   "INSERT INTO grants (key_id, role, resource_type, resource_id)"
		                   " VALUES (?1, ?2, ?3, ?4)",
		                   "tttt", key_ids[k], vk_role_name(g[i].role), res_type(g[i].res),
		                   res_ids[g[i].res]),
		     fk->name, err);
	if (fk->disabled)
		must(vk_store_exec(db, "disable", err, NULL,
		                   "UPDATE keys SET disabled = 1 WHERE id = ?1", "t", key_ids[k]),
		     fk->name, err);
	add_token(token, k, fk->rotation == ROT_NONE || fk->rotation == ROT_GRACE);
	if (fk->rotation != ROT_NONE) {
		int64_t grace = fk->rotation == ROT_NOW ? 0 : DAY;

		t.now = fk->rotation == ROT_LAPSED ? NOW - 2 * DAY : NOW;
		must(vk_key_rotate(&t, key_ids[k], grace, token, err), fk->name, err);
		add_token(token, k, 1);
	}
	must(vk_txn_commit(&t, err), "commit", err);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *store = NULL, *conf = NULL, *text = NULL, err[VK_ERRLEN];
	int n;

	(void)argc, (void)argv;
	fz_setup();
	store = fz_path("store/keys.db");
	conf = fz_path("viamkey.conf");
	must(vk_store_open(store, VK_OPEN_INIT, 1000, &db, err), "init", err);
	create_tree();
	for (size_t k = 0; k < NKEYS; k++)
		create_key(k);
	if (sqlite3_close(db) != SQLITE_OK)
		fz_die("fixture: cannot close the store");
	db = NULL;

	/* from here on, as the module: the config names the store and the machine */
	if ((n = asprintf(&text, config_fmt, store, res_ids[HOST])) < 0)
		fz_die("out of memory");
	fz_write_file(conf, text, (size_t)n);
	must(vk_config_load(conf, &cfg, err), "config", err);
	login.store_path = cfg.store_path;
	login.busy_timeout_ms = cfg.busy_timeout_ms;
	login.last_used_interval = -1;
	free(text);
	free(conf);
	free(store);
	return 0;
}

/* ---- the model ---------------------------------------------------------- */

struct expect {
	vk_decision decision;
	vk_reason reason;
	const struct fixture_key *key; /* when the token names a fixture key */
	size_t key_index;
	vk_role role;            /* on ALLOW and ROLE */
	const struct grant *via; /* on ALLOW and ROLE */
};

static int
specificity(int r)
{
	return parent[r] < 0 ? 1 : parent[parent[r]] < 0 ? 2 : 3;
}

/* The highest-role grant covering machine m, the most specific on a tie; NULL if none. */
static const struct grant *
best_grant(const struct fixture_key *fk, int m)
{
	const struct grant *best = NULL;

	for (size_t i = 0; i < MAX_GRANTS && fk->grants[i].role != VK_ROLE_NONE; i++) {
		const struct grant *g = &fk->grants[i];

		if (g->res != m && g->res != parent[m] && g->res != parent[parent[m]])
			continue;
		if (best == NULL || g->role > best->role ||
		    (g->role == best->role && specificity(g->res) > specificity(best->res)))
			best = g;
	}
	return best;
}

static int
has_user(const struct fixture_key *fk, const char *user)
{
	for (size_t i = 0; i < MAX_USERS && fk->users[i] != NULL; i++)
		if (strcmp(fk->users[i], user) == 0)
			return 1;
	return 0;
}

static vk_role
model_required(const char *service)
{
	for (size_t i = 0; service != NULL && i < sizeof services / sizeof services[0]; i++)
		if (strcasecmp(services[i].name, service) == 0)
			return services[i].role;
	return PAM_ROLE;
}

static void
set_expect(struct expect *e, vk_decision d, vk_reason r)
{
	e->decision = d;
	e->reason = r;
}

/* SPEC §2: leading and trailing spaces, tabs, CRs and LFs are not part of the token. */
static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
model(const char *token, size_t len, const char *user, int machine, vk_role required,
      struct expect *e)
{
	const struct fixture_token *ft = NULL;
	const struct fixture_key *fk;
	char id[VK_UUID_STRLEN + 1];
	struct vk_token t;
	vk_token_status st;

	memset(e, 0, sizeof *e);
	/* longer than VK_TOKEN_HARD_MAX: refused as it is, blanks and all */
	if (len <= VK_TOKEN_HARD_MAX) {
		while (len > 0 && blank(token[0]))
			token++, len--;
		while (len > 0 && blank(token[len - 1]))
			len--;
	}
	/* the token is judged first: a typo is denied even where no machine can be found */
	st = vk_token_parse(token, len, &t);
	vk_uuid_format(t.key_id, id);
	vk_token_wipe(&t);
	if (st != VK_TOKEN_OK) {
		set_expect(e, VK_DECISION_DENY,
		           st == VK_TOKEN_CHECKSUM ? VK_REASON_CHECKSUM : VK_REASON_MALFORMED);
		return;
	}
	for (size_t k = 0; k < NKEYS; k++) {
		if (strcmp(key_ids[k], id) == 0) {
			e->key = &keys[k];
			e->key_index = k;
		}
	}
	if (machine == NO_MACHINE) {
		set_expect(e, VK_DECISION_ERROR, VK_REASON_MACHINE);
		e->key = NULL; /* no key is read */
		return;
	}
	set_expect(e, VK_DECISION_DENY,
	           e->key != NULL ? VK_REASON_WRONG_SECRET : VK_REASON_UNKNOWN_KEY);
	for (size_t i = 0; i < ntokens; i++)
		if (len == VK_TOKEN_LEN && memcmp(tokens[i].text, token, len) == 0)
			ft = &tokens[i];
	if (ft == NULL || !ft->live)
		return;
	fk = e->key;
	e->via = best_grant(fk, machine);
	e->role = e->via != NULL ? e->via->role : VK_ROLE_NONE;
	if (fk->disabled)
		e->reason = VK_REASON_DISABLED;
	else if (fk->expires != 0 && NOW + fk->expires <= NOW)
		e->reason = VK_REASON_EXPIRED;
	else if (!has_user(fk, user))
		e->reason = VK_REASON_USER;
	else if (e->via == NULL)
		e->reason = VK_REASON_SCOPE;
	else if (e->role < required)
		e->reason = VK_REASON_ROLE;
	else
		set_expect(e, VK_DECISION_ALLOW, VK_REASON_OK);
}

/* ---- the checks --------------------------------------------------------- */

static void
check_result(const struct vk_request *req, const struct vk_result *res, const struct expect *e)
{
	if (res->decision != e->decision || res->reason != e->reason)
		fz_die("decision %d (%s), expected %d (%s): %s", res->decision,
		       vk_reason_name(res->reason), e->decision, vk_reason_name(e->reason),
		       res->err);
	FZ_CHECK(memchr(res->err, '\0', sizeof res->err) != NULL);
	if (e->key != NULL) {
		FZ_CHECK(strcmp(res->key_id, key_ids[e->key_index]) == 0);
		FZ_CHECK(strcmp(res->key_name, e->key->name) == 0);
	}
	FZ_CHECK(memchr(res->use_err, '\0', sizeof res->use_err) != NULL);
	FZ_CHECK(res->use_err[0] == '\0'); /* nothing was to be recorded */
	/* the key ID is known once the token parsed, even when the store then fails */
	if (e->reason == VK_REASON_MALFORMED || e->reason == VK_REASON_CHECKSUM) {
		FZ_CHECK(res->key_id[0] == '\0');
		FZ_CHECK(res->machine[0] == '\0');
	} else {
		FZ_CHECK(vk_uuid_valid(res->key_id));
		FZ_CHECK(strcmp(res->machine, req->machine_id) == 0);
	}
	if (e->reason == VK_REASON_OK || e->reason == VK_REASON_ROLE) {
		FZ_CHECK(res->role == e->role);
		FZ_CHECK(strcmp(res->via_type, res_type(e->via->res)) == 0);
		FZ_CHECK(strcmp(res->via_id, res_ids[e->via->res]) == 0);
	}
}

/*
 * The account-management re-check must agree with every decision made after
 * the secret: from the key ID alone (every check reads the store), and from
 * the decision itself (an allow may stand unread).
 */
static void
check_recheck(const struct vk_request *req, const struct vk_result *res)
{
	struct vk_result again, id_only;

	switch (res->reason) {
	case VK_REASON_OK:
	case VK_REASON_DISABLED:
	case VK_REASON_EXPIRED:
	case VK_REASON_USER:
	case VK_REASON_SCOPE:
	case VK_REASON_ROLE:
	case VK_REASON_UNKNOWN_KEY:
		break;
	default:
		return;
	}
	memset(&id_only, 0, sizeof id_only);
	memcpy(id_only.key_id, res->key_id, sizeof id_only.key_id);
	for (int i = 0; i < 2; i++) {
		vk_authorize_recheck(&login, i == 0 ? &id_only : res, req, &again);
		FZ_CHECK(again.decision == res->decision && again.reason == res->reason);
		FZ_CHECK(strcmp(again.key_name, res->key_name) == 0);
		if (res->reason == VK_REASON_OK || res->reason == VK_REASON_ROLE) {
			FZ_CHECK(again.role == res->role);
			FZ_CHECK(strcmp(again.via_type, res->via_type) == 0);
			FZ_CHECK(strcmp(again.via_id, res->via_id) == 0);
		}
	}
}

/* ---- the input ---------------------------------------------------------- */

struct input {
	char *token; /* token_len bytes, not NUL-terminated */
	size_t token_len;
	char *user;
	char *service; /* NULL when the input names none */
	int machine;
};

/* Exactly n bytes, so that reading past the token is caught. */
static char *
copy_exact(const uint8_t *data, size_t n)
{
	char *p = malloc(n);

	if (p == NULL && n != 0)
		fz_die("out of memory");
	if (n != 0)
		memcpy(p, data, n);
	return p;
}

/* USER \0 SERVICE, either part possibly missing. */
static void
decode_user_service(const uint8_t *data, size_t size, struct input *in)
{
	size_t n, m;
	const uint8_t *rest = fz_split(data, size, &n);

	in->user = fz_strndup(data, n);
	if (rest != NULL) {
		fz_split(rest, size - n - 1, &m);
		in->service = fz_strndup(rest, m);
	}
}

static void
decode(const uint8_t *data, size_t size, struct input *in)
{
	memset(in, 0, sizeof *in);
	if (size >= 5 && data[0] == 'T') {
		const struct fixture_token *ft = &tokens[data[2] % ntokens];
		size_t pick = data[1] % (NMACHINES + 1);
		size_t len = data[3] <= VK_TOKEN_MAX ? data[3] : VK_TOKEN_LEN;
		size_t nmask = data[4] < size - 5 ? data[4] : size - 5;
		uint8_t buf[VK_TOKEN_MAX];

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(i < VK_TOKEN_LEN ? ft->text[i] : 'A');
		for (size_t i = 0; i < nmask && i < len; i++)
			buf[i] ^= data[5 + i];
		in->machine = pick < NMACHINES ? machines[pick] : NO_MACHINE;
		in->token = copy_exact(buf, len);
		in->token_len = len;
		decode_user_service(data + 5 + nmask, size - 5 - nmask, in);
	} else {
		size_t n;
		const uint8_t *rest = fz_split(data, size, &n);

		in->machine = HOST;
		in->token = copy_exact(data, n);
		in->token_len = n;
		if (rest != NULL)
			decode_user_service(rest, size - n - 1, in);
		else
			decode_user_service((const uint8_t *)"", 0, in);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vk_request req;
	struct vk_result res;
	struct expect e;
	struct input in;

	decode(data, size, &in);
	memset(&req, 0, sizeof req);
	req.token = in.token;
	req.token_len = in.token_len;
	req.user = in.user;
	req.machine_id = in.machine == HOST         ? cfg.machine_id
	                 : in.machine == NO_MACHINE ? unknown_machine
	                                            : res_ids[in.machine];
	req.required = vk_config_required_role(&cfg, in.service, VK_ROLE_NONE);
	req.now = NOW;
	FZ_CHECK(req.required == model_required(in.service));

	vk_authorize(&login, &req, &res);
	model(in.token, in.token_len, in.user, in.machine, req.required, &e);
	check_result(&req, &res, &e);
	check_recheck(&req, &res);

	free(in.token);
	free(in.user);
	free(in.service);
	return 0;
}
