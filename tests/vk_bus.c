/*
 * vk_bus - the fleet tests' hands on the bus: raw Key-Value values, and
 * what a bus user may and may not do.
 *
 *   vk_bus [--user U --password-file F | --creds FILE] [--inbox PREFIX] SERVERS COMMAND ARGS...
 *
 *   get BUCKET ENTRY          prints the entry's latest value, byte for byte
 *                             (exit 1 when it has none)
 *   put BUCKET ENTRY          puts stdin, byte for byte, as the entry's value
 *   request SUBJECT [BODY]    one request (2 s); prints "denied" when the
 *                             server said the publish was a permissions
 *                             violation, "timeout", or the reply
 *   publish SUBJECT BODY [REPLY [NAME:VALUE...]]
 *                             one message, with that reply subject ("":
 *                             none) and those headers; prints "denied" as
 *                             request does, else "sent" (once the server
 *                             has it)
 *   listen UNTIL SUBJECT...   subscribes to each SUBJECT, then prints the
 *                             subject of every message received until one
 *                             arrives on UNTIL (subscribed too), 30 s at
 *                             most (exit 1 then); "ready" on stderr once the
 *                             server has every subscription (or refused it:
 *                             its log says so, the client may not yet)
 *
 * SERVERS is a comma-separated list of nats:// URLs; PREFIX the inbox
 * prefix of replies (a machine's bus user may subscribe to its own only). Exit 2 on a usage
 * error, 1 when the bus cannot be reached or the command failed.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SERVERS   8
#define WAIT_MS       5000
#define REQUEST_MS    2000
#define LISTEN_MS     30000
#define VALUE_MAX     (1024 * 1024)
#define PASSWORD_MAX  256
#define CONNECT_TRIES 4

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char denied[4096]; /* the permissions violations reported, one per line */

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
	const char *text = NULL;

	(void)sub;
	(void)closure;
	if (s != NATS_NOT_PERMITTED)
		return;
	natsConnection_GetLastError(nc, &text);
	pthread_mutex_lock(&mu);
	if (strlen(denied) + strlen(text ? text : "?") + 2 < sizeof denied) {
		strcat(denied, text ? text : "?");
		strcat(denied, "\n");
	}
	pthread_mutex_unlock(&mu);
}

/* Whether a permissions violation naming subject was reported. */
/*
 * Whether the server refused a publish to subject. The error callback runs
 * on nats.c's thread for callbacks, perhaps only after the flush that
 * follows the publish returned; the connection's last error is set before
 * the server's PONG is read, so it is asked too.
 */
static int
was_denied(natsConnection *nc, const char *subject)
{
	const char *last = NULL;
	char quoted[512];
	int found;

	snprintf(quoted, sizeof quoted, "\"%s\"", subject);
	if (natsConnection_GetLastError(nc, &last) == NATS_NOT_PERMITTED && last != NULL &&
	    strstr(last, quoted) != NULL)
		return 1;
	pthread_mutex_lock(&mu);
	found = strstr(denied, quoted) != NULL;
	pthread_mutex_unlock(&mu);
	return found;
}

static int
usage(void)
{
	fputs("usage: vk_bus [--user U --password-file F | --creds FILE] [--inbox PREFIX] SERVERS"
	      " get|put BUCKET ENTRY | request SUBJECT [BODY]"
	      " | publish SUBJECT BODY [REPLY [NAME:VALUE...]] | listen UNTIL SUBJECT...\n",
	      stderr);
	return 2;
}

static int
read_all(FILE *f, char *buf, size_t cap, size_t *len)
{
	*len = fread(buf, 1, cap, f);
	return ferror(f) || *len == cap ? -1 : 0;
}

static int
cmd_get(natsConnection *nc, const char *bucket, const char *entry)
{
	jsCtx *js = NULL;
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	natsStatus s;
	int rc = 1;

	if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK ||
	    (s = js_KeyValue(&kv, js, bucket)) != NATS_OK ||
	    (s = kvStore_Get(&e, kv, entry)) != NATS_OK) {
		fprintf(stderr, "vk_bus: get %s: %s\n", entry, natsStatus_GetText(s));
	} else if (kvEntry_Operation(e) != kvOp_Put) {
		fprintf(stderr, "vk_bus: get %s: deleted\n", entry);
	} else {
		fwrite(kvEntry_Value(e), 1, (size_t)kvEntry_ValueLen(e), stdout);
		rc = 0;
	}
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
	jsCtx_Destroy(js);
	return rc;
}

static int
cmd_put(natsConnection *nc, const char *bucket, const char *entry)
{
	char *value = malloc(VALUE_MAX);
	jsCtx *js = NULL;
	kvStore *kv = NULL;
	uint64_t rev = 0;
	natsStatus s = NATS_ERR;
	size_t len = 0;
	int rc = 1;

	if (value == NULL || read_all(stdin, value, VALUE_MAX, &len) != 0) {
		fprintf(stderr, "vk_bus: put %s: cannot read the value\n", entry);
	} else if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK ||
	           (s = js_KeyValue(&kv, js, bucket)) != NATS_OK ||
	           (s = kvStore_Put(&rev, kv, entry, value, (int)len)) != NATS_OK) {
		fprintf(stderr, "vk_bus: put %s: %s\n", entry, natsStatus_GetText(s));
	} else {
		rc = 0;
	}
	kvStore_Destroy(kv);
	jsCtx_Destroy(js);
	free(value);
	return rc;
}

static int
cmd_request(natsConnection *nc, const char *subject, const char *body)
{
	natsMsg *reply = NULL;
	natsStatus s = natsConnection_RequestString(&reply, nc, subject, body, REQUEST_MS);

	/* a PING after the request: any -ERR the server sent for it has been read */
	(void)natsConnection_FlushTimeout(nc, WAIT_MS);
	if (was_denied(nc, subject)) {
		puts("denied");
	} else if (s == NATS_OK) {
		printf("%.*s\n", natsMsg_GetDataLength(reply), natsMsg_GetData(reply));
	} else {
		printf("%s\n", s == NATS_TIMEOUT ? "timeout" : natsStatus_GetText(s));
	}
	natsMsg_Destroy(reply);
	return 0;
}

static int
cmd_publish(natsConnection *nc, const char *subject, const char *body, const char *reply,
            char **headers, int nheaders)
{
	natsMsg *m = NULL;
	int rc = 1;

	if (natsMsg_Create(&m, subject, reply != NULL && *reply != '\0' ? reply : NULL, body,
	                   (int)strlen(body)) != NATS_OK)
		return 1;
	for (int i = 0; i < nheaders; i++) {
		char *colon = strchr(headers[i], ':');

		if (colon == NULL) {
			fprintf(stderr, "vk_bus: a header is NAME:VALUE, not %s\n", headers[i]);
			goto out;
		}
		*colon = '\0';
		if (natsMsgHeader_Set(m, headers[i], colon + 1) != NATS_OK)
			goto out;
	}
	if (natsConnection_PublishMsg(nc, m) != NATS_OK ||
	    natsConnection_FlushTimeout(nc, WAIT_MS) != NATS_OK) {
		fprintf(stderr, "vk_bus: cannot publish to %s\n", subject);
		goto out;
	}
	puts(was_denied(nc, subject) ? "denied" : "sent");
	rc = 0;
out:
	natsMsg_Destroy(m);
	return rc;
}

static int
cmd_listen(natsConnection *nc, const char *until, char **subjects, int n)
{
	natsSubscription **subs = calloc((size_t)n + 1, sizeof *subs);
	int rc = 1;

	if (subs == NULL)
		return 1;
	for (int i = 0; i <= n; i++) {
		const char *subject = i < n ? subjects[i] : until;

		if (natsConnection_SubscribeSync(&subs[i], nc, subject) != NATS_OK) {
			fprintf(stderr, "vk_bus: cannot subscribe to %s\n", subject);
			goto out;
		}
	}
	/* the server has processed every SUB once it answers this PING */
	if (natsConnection_FlushTimeout(nc, WAIT_MS) != NATS_OK) {
		fprintf(stderr, "vk_bus: the server did not answer\n");
		goto out;
	}
	fputs("ready\n", stderr);
	for (int64_t start = nats_Now(); nats_Now() - start < LISTEN_MS;) {
		for (int i = 0; i <= n; i++) {
			natsMsg *m = NULL;

			if (natsSubscription_NextMsg(&m, subs[i], 10) != NATS_OK)
				continue;
			printf("%s\n", natsMsg_GetSubject(m));
			fflush(stdout);
			natsMsg_Destroy(m);
			if (i == n) {
				/* what came before it on this connection was queued before it */
				for (int j = 0; j < n; j++)
					while (natsSubscription_NextMsg(&m, subs[j], 1) ==
					       NATS_OK) {
						printf("%s\n", natsMsg_GetSubject(m));
						natsMsg_Destroy(m);
					}
				rc = 0;
				goto out;
			}
		}
	}
	fprintf(stderr, "vk_bus: nothing arrived on %s in %d s\n", until, LISTEN_MS / 1000);
out:
	for (int i = 0; i <= n; i++)
		natsSubscription_Destroy(subs[i]);
	free(subs);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *servers[MAX_SERVERS], *user = NULL, *password_file = NULL, *inbox = NULL,
	                                  *creds = NULL;
	char *list, password[PASSWORD_MAX] = "";
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	int i = 1, n = 0, rc;
	natsStatus s;

	while (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			password_file = argv[i + 1];
		else if (strcmp(argv[i], "--inbox") == 0)
			inbox = argv[i + 1];
		else if (strcmp(argv[i], "--creds") == 0)
			creds = argv[i + 1];
		else
			return usage();
		i += 2;
	}
	if (argc - i < 3)
		return usage();
	list = argv[i++];
	for (char *tok = strtok(list, ", "); tok != NULL && n < MAX_SERVERS;
	     tok = strtok(NULL, ", "))
		servers[n++] = tok;
	if (password_file != NULL) {
		FILE *f = fopen(password_file, "r");

		if (f == NULL || fgets(password, sizeof password, f) == NULL) {
			fprintf(stderr, "vk_bus: cannot read %s\n", password_file);
			return 1;
		}
		fclose(f);
		password[strcspn(password, "\r\n")] = '\0';
	}
	if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetServers(o, servers, n) != NATS_OK ||
	    natsOptions_SetErrorHandler(o, on_error, NULL) != NATS_OK ||
	    (user != NULL && natsOptions_SetUserInfo(o, user, password) != NATS_OK) ||
	    (creds != NULL && natsOptions_SetUserCredentialsFromFiles(o, creds, NULL) != NATS_OK) ||
	    (inbox != NULL && natsOptions_SetCustomInboxPrefix(o, inbox) != NATS_OK))
		return 1;
	/*
	 * libnats 3.4.1 sends no signature whose first byte is zero (one nonce in
	 * 256; syncd/dial.c rule 3) and the server refuses the user: a refusal is
	 * tried again, with a new nonce, so that a check does not fail by it. A
	 * user the server does refuse is refused CONNECT_TRIES times.
	 */
	for (int t = 0; (s = natsConnection_Connect(&nc, o)) == NATS_CONNECTION_AUTH_FAILED &&
	                creds != NULL && ++t < CONNECT_TRIES;)
		;
	if (s != NATS_OK) {
		fprintf(stderr, "vk_bus: cannot connect: %s\n", natsStatus_GetText(s));
		natsOptions_Destroy(o);
		return 1;
	}
	if (strcmp(argv[i], "get") == 0 && argc - i == 3)
		rc = cmd_get(nc, argv[i + 1], argv[i + 2]);
	else if (strcmp(argv[i], "put") == 0 && argc - i == 3)
		rc = cmd_put(nc, argv[i + 1], argv[i + 2]);
	else if (strcmp(argv[i], "request") == 0 && (argc - i == 2 || argc - i == 3))
		rc = cmd_request(nc, argv[i + 1], argc - i == 3 ? argv[i + 2] : "");
	else if (strcmp(argv[i], "publish") == 0 && argc - i >= 3)
		rc = cmd_publish(nc, argv[i + 1], argv[i + 2], argc - i >= 4 ? argv[i + 3] : NULL,
		                 argv + i + 4, argc - i >= 4 ? argc - i - 4 : 0);
	else if (strcmp(argv[i], "listen") == 0 && argc - i >= 3)
		rc = cmd_listen(nc, argv[i + 1], argv + i + 2, argc - i - 2);
	else
		rc = usage();
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	nats_Close();
	return rc;
}
