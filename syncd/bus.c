/*
 * bus.c - viamkey-syncd's side of NATS: the connection, a queue of
 * messages for the main thread, JetStream API requests, and catch-up
 * consumers.
 *
 * The bus is trusted for delivery, not for truth: nothing here decides
 * what a message means. The live path is a plain subscription on the
 * bucket's republished subjects (it survives reconnects and a lost stream
 * leader); catch-up uses a named consumer whose filter is in the request
 * subject, so that a machine's bus user can be confined to its own scope.
 * Subscriptions are made once and kept (nats.c 3.4.1 can crash when one is
 * destroyed while messages for it are arriving); a machine replaces the
 * subscription of a scope only when it moves to another location.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "dial.h"
#include "record.h"
#include "syncd.h"

#define QUEUE_INITIAL   1024
#define MAX_SERVERS     16
#define REQUEST_WAIT_MS 5000
#define CONNECT_TRIES   4 /* a refusal may be libnats 3.4.1's own: see sd_bus_open() */
/*
 * A consumer is created in 12-25 ms on an idle three-node cluster, and in
 * about 150 ms beside 100,000 other entries; one that takes longer than
 * this is most likely placed on a dead node (viamkey-syncd(8)) and is
 * better tried again under another name.
 */
#define CONSUMER_WAIT_MS 2000
#define PASSWORD_MAX     512
#define FETCH_WINDOW     256           /* direct gets in flight at once */
#define FETCH_SLICE_MS   100           /* how often a fetch looks whether the server refused it */
#define CONSUMER_IDLE_NS "30000000000" /* a forgotten catch-up consumer goes after 30 s */

/* ---- the queue ------------------------------------------------------------- */

/*
 * The open bus, which nats.c's callbacks and sd_request_stop() reach only
 * under open_mu. The callbacks are given no pointer of their own: one may
 * still run after sd_bus_close() (nats.h), when the bus it would have
 * named is gone, and then finds none here.
 */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sd_bus *open_bus;

volatile sig_atomic_t sd_stop;

void
sd_request_stop(void)
{
	pthread_mutex_lock(&open_mu);
	if (open_bus != NULL) {
		/* under the queue's lock, which sd_queue_pop() checks sd_stop under */
		pthread_mutex_lock(&open_bus->q.mu);
		sd_stop = 1;
		pthread_cond_broadcast(&open_bus->q.cv);
		pthread_mutex_unlock(&open_bus->q.mu);
	} else {
		sd_stop = 1;
	}
	pthread_mutex_unlock(&open_mu);
}

/* Queues it (NULL: only the connection's news); the main thread is woken when it waits. */
static void
queue_push(struct sd_queue *q, const struct sd_item *it, int connected)
{
	pthread_mutex_lock(&q->mu);
	if (it != NULL) {
		if (q->count == q->cap) {
			size_t cap = q->cap ? q->cap * 2 : QUEUE_INITIAL;
			struct sd_item *items = malloc(cap * sizeof *items);

			if (items == NULL) {
				pthread_mutex_unlock(&q->mu);
				/* lost here, found again by the next reconcile */
				natsMsg_Destroy(it->msg);
				return;
			}
			for (size_t i = 0; i < q->count; i++)
				items[i] = q->items[(q->head + i) % q->cap];
			free(q->items);
			q->items = items;
			q->head = 0;
			q->cap = cap;
		}
		q->items[(q->head + q->count++) % q->cap] = *it;
	}
	q->connected |= connected;
	if (q->waiting)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
sd_queue_wake(struct sd_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->woken = 1;
	if (q->waiting)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* sd_queue_pop(), and sd_queue_wait() when wakeable: a wake ends the wait too, and is taken. */
static natsMsg *
pop(struct sd_queue *q, int64_t timeout_ms, int *connected, struct sd_item *it, int wakeable)
{
	struct sd_item got = {0};
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&q->mu);
	q->waiting = 1;
	while (q->count == 0 && !q->connected && !(wakeable && q->woken) && !sd_stop)
		if (pthread_cond_timedwait(&q->cv, &q->mu, &until) != 0)
			break;
	q->waiting = 0;
	if (wakeable)
		q->woken = 0;
	if (q->connected) {
		*connected = 1;
		q->connected = 0;
	}
	if (q->count > 0) {
		got = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	pthread_mutex_unlock(&q->mu);
	if (it != NULL)
		*it = got;
	return got.msg;
}

natsMsg *
sd_queue_pop(struct sd_queue *q, int64_t timeout_ms, int *connected, struct sd_item *it)
{
	return pop(q, timeout_ms, connected, it, 0);
}

natsMsg *
sd_queue_wait(struct sd_queue *q, int64_t timeout_ms, int *connected, struct sd_item *it)
{
	return pop(q, timeout_ms, connected, it, 1);
}

static void
on_message(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct sd_item it = {.msg = m};

	(void)nc;
	(void)sub;
	(void)closure;
	pthread_mutex_lock(&open_mu);
	if (open_bus != NULL) {
		if (open_bus->q.check != NULL)
			open_bus->q.check(open_bus->q.check_ctx, &it);
		queue_push(&open_bus->q, &it, 0);
	} else {
		natsMsg_Destroy(m);
	}
	pthread_mutex_unlock(&open_mu);
}

static void
on_connected(natsConnection *nc, void *closure)
{
	char url[256] = "";

	(void)closure;
	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	sd_log(LOG_INFO, "connected to %s", url[0] ? url : "the bus");
	pthread_mutex_lock(&open_mu);
	if (open_bus != NULL)
		queue_push(&open_bus->q, NULL, 1);
	pthread_mutex_unlock(&open_mu);
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
	sd_log(LOG_WARNING, "disconnected from the bus; reconnecting");
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
	const char *text = NULL;

	(void)sub;
	(void)closure;
	if (s == NATS_NOT_PERMITTED && natsConnection_GetLastError(nc, &text) != NATS_OK &&
	    text != NULL && strstr(text, "$JS.API.DIRECT.GET.") != NULL) {
		/* sd_bus_fetch() tells its caller: this bus user reads its scopes otherwise */
		pthread_mutex_lock(&open_mu);
		if (open_bus != NULL)
			__atomic_add_fetch(&open_bus->denied_get, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&open_mu);
		sd_log(LOG_DEBUG, "bus: %s", text);
		return;
	}
	sd_log(LOG_WARNING, "bus: %s%s%s", natsStatus_GetText(s), text != NULL ? ": " : "",
	       text != NULL ? text : "");
}

/*
 * An async publish that JetStream refused (no responders while the stream
 * elects a leader, say) or did not acknowledge in time: without this
 * handler nats.c drops it silently, and js_PublishAsyncComplete() reports
 * success. Counted, so that the publisher keeps its outbox rows.
 */
static void
on_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)closure;
	pthread_mutex_lock(&open_mu);
	if (open_bus != NULL)
		__atomic_add_fetch(&open_bus->pub_failed, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&open_mu);
	sd_log(LOG_DEBUG, "the bus refused a publish: %s",
	       pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
}

/* ---- the connection --------------------------------------------------------- */

/* The password in path: the file's first line, from a file only root (or the euid) can read. */
static int
read_password(const char *path, char *out, size_t size)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), rc = -1;

	if (fd < 0) {
		sd_log(LOG_ERR, "password_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077) != 0)
		sd_log(LOG_ERR, "password_file %s must be a regular file of root's, mode 0600",
		       path);
	else if ((n = read(fd, out, size - 1)) <= 0)
		sd_log(LOG_ERR, "password_file %s is empty", path);
	else {
		out[n] = '\0';
		out[strcspn(out, "\r\n")] = '\0';
		rc = 0;
	}
	close(fd);
	return rc;
}

static int
set_credentials(natsOptions *o, const struct vk_sync_config *cfg)
{
	natsStatus s = NATS_OK;

	if (cfg->credentials != NULL) {
		s = natsOptions_SetUserCredentialsFromFiles(o, cfg->credentials, NULL);
	} else if (cfg->user != NULL) {
		char *password = sodium_malloc(PASSWORD_MAX);

		if (password == NULL)
			return -1;
		password[0] = '\0';
		if (cfg->password_file != NULL &&
		    read_password(cfg->password_file, password, PASSWORD_MAX) != 0) {
			sodium_free(password);
			return -1;
		}
		s = natsOptions_SetUserInfo(o, cfg->user, password);
		sodium_free(password);
	}
	if (s != NATS_OK) {
		sd_log(LOG_ERR, "bus credentials: %s", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

/* Splits "a, b,c" into servers[]; returns how many. */
static int
split_servers(char *list, const char *servers[MAX_SERVERS])
{
	int n = 0;

	for (char *tok = strtok(list, ", "); tok != NULL; tok = strtok(NULL, ", ")) {
		if (n == MAX_SERVERS) {
			sd_log(LOG_WARNING, "[sync] servers: only the first %d are used",
			       MAX_SERVERS);
			break;
		}
		servers[n++] = tok;
	}
	return n;
}

static int
jetstream(struct sd_bus *b, jsCtx **js, jsOptions *jo)
{
	jo->Wait = REQUEST_WAIT_MS;
	if (natsConnection_JetStream(js, b->nc, jo) != NATS_OK) {
		sd_log(LOG_ERR, "cannot use JetStream: %s", nats_GetLastError(NULL));
		return -1;
	}
	return 0;
}

int
sd_bus_jetstream(struct sd_bus *b, jsCtx **js)
{
	jsOptions jo;

	jsOptions_Init(&jo);
	return jetstream(b, js, &jo);
}

int
sd_bus_open(struct sd_bus *b, const struct vk_sync_config *cfg, const char *name, const char *inbox)
{
	const char *servers[MAX_SERVERS];
	natsOptions *o = NULL;
	char *list = NULL;
	jsOptions jo;
	natsStatus s;
	int n, rc = -1;

	memset(b, 0, sizeof *b);
	pthread_mutex_init(&b->q.mu, NULL);
	pthread_cond_init(&b->q.cv, NULL);
	pthread_mutex_lock(&open_mu);
	open_bus = b;
	pthread_mutex_unlock(&open_mu);
	b->cfg = cfg;
	snprintf(b->stream, sizeof b->stream, "KV_%s", cfg->bucket);
	snprintf(b->kv_prefix, sizeof b->kv_prefix, "$KV.%s.", cfg->bucket);
	snprintf(b->live_prefix, sizeof b->live_prefix, "vk.%s.", cfg->bucket);
	snprintf(b->ack_prefix, sizeof b->ack_prefix, "vkack.%s.", cfg->bucket);
	snprintf(b->inbox, sizeof b->inbox, "%s", inbox);
	if (cfg->servers == NULL) {
		sd_log(LOG_ERR, "no [sync] servers configured");
		return -1;
	}
	if ((list = strdup(cfg->servers)) == NULL || (n = split_servers(list, servers)) == 0) {
		sd_log(LOG_ERR, "no [sync] servers configured");
		goto out;
	}
	/*
	 * One delivery thread for every subscription: messages reach the queue
	 * in the order they came off the connection, so that a heartbeat never
	 * overtakes the records published before it (the revision a machine
	 * acknowledges depends on it).
	 */
	if (nats_SetMessageDeliveryPoolSize(1) != NATS_OK || natsOptions_Create(&o) != NATS_OK ||
	    natsOptions_SetServers(o, servers, n) != NATS_OK ||
	    natsOptions_SetName(o, name) != NATS_OK ||
	    natsOptions_SetCustomInboxPrefix(o, inbox) != NATS_OK ||
	    natsOptions_UseGlobalMessageDelivery(o, true) != NATS_OK ||
	    natsOptions_SetMaxReconnect(o, -1) != NATS_OK ||
	    natsOptions_SetReconnectWait(o, 1000) != NATS_OK ||
	    natsOptions_SetReconnectJitter(o, 1000, 2000) != NATS_OK ||
	    natsOptions_SetReconnectedCB(o, on_connected, NULL) != NATS_OK ||
	    natsOptions_SetDisconnectedCB(o, on_disconnected, NULL) != NATS_OK ||
	    natsOptions_SetErrorHandler(o, on_error, NULL) != NATS_OK ||
	    set_credentials(o, cfg) != 0) {
		sd_log(LOG_ERR, "cannot set up the bus connection: %s", nats_GetLastError(NULL));
		goto out;
	}
	/*
	 * A refusal may be libnats 3.4.1's own (dial.c rule 3: a signature it
	 * left out): connected again, it signs a new nonce. What fails still,
	 * a bus not there yet or a user it does refuse, nats.c goes on trying
	 * in the background (each server is then tried a second time first).
	 */
	for (int tries = 1;
	     sd_dial_refusal(s = natsConnection_Connect(&b->nc, o)) && tries < CONNECT_TRIES;
	     tries++)
		sd_log(LOG_INFO, "the bus refused this user; connecting again (libnats 3.4.1 leaves"
		                 " out one signature in 256)");
	if (s != NATS_OK &&
	    natsOptions_SetRetryOnFailedConnect(o, true, on_connected, NULL) == NATS_OK)
		s = natsConnection_Connect(&b->nc, o);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		sd_log(LOG_ERR, "cannot connect to the bus: %s", natsStatus_GetText(s));
		goto out;
	}
	if (s == NATS_NOT_YET_CONNECTED)
		sd_log(LOG_WARNING, "the bus is not reachable yet; trying in the background");
	jsOptions_Init(&jo);
	jo.PublishAsync.ErrHandler = on_pub_error;
	if (jetstream(b, &b->js, &jo) != 0)
		goto out;
	rc = 0;
out:
	natsOptions_Destroy(o);
	free(list);
	return rc;
}

/*
 * Closes the connection and frees the queue. nats.c's threads live on
 * until the process exits: nats_CloseAndWait() would end them, but nats.c
 * 3.4.1 may lose the messages its delivery thread frees while it does
 * (its garbage collector can end first), and a message freed after it
 * would use the collector's destroyed lock.
 */
int
sd_bus_closed(struct sd_bus *b)
{
	const char *why = NULL;

	if (b->nc == NULL || natsConnection_Status(b->nc) != NATS_CONN_STATUS_CLOSED)
		return 0;
	(void)natsConnection_GetLastError(b->nc, &why);
	sd_log(LOG_WARNING, "the bus connection was closed for good (%s); connecting again",
	       why != NULL && *why != '\0' ? why : "no reason given");
	return 1;
}

void
sd_bus_close(struct sd_bus *b)
{
	pthread_mutex_lock(&open_mu);
	if (open_bus == b)
		open_bus = NULL;
	pthread_mutex_unlock(&open_mu);
	jsCtx_Destroy(b->js);
	if (b->nc != NULL)
		natsConnection_Close(b->nc);
	for (size_t i = 0; i < SD_MAX_SUBS; i++)
		natsSubscription_Destroy(b->subs[i]);
	natsSubscription_Destroy(b->fetch_sub);
	natsConnection_Destroy(b->nc);
	for (size_t i = 0; i < b->q.count; i++)
		natsMsg_Destroy(b->q.items[(b->q.head + i) % b->q.cap].msg);
	free(b->q.items);
	memset(b, 0, sizeof *b);
}

int
sd_bus_subscribe(struct sd_bus *b, const char *subject, natsSubscription **sub)
{
	size_t i = 0;
	natsStatus s;

	*sub = NULL;
	while (i < SD_MAX_SUBS && b->subs[i] != NULL)
		i++;
	if (i == SD_MAX_SUBS) {
		sd_log(LOG_ERR, "cannot subscribe to %s: more than %d subscriptions", subject,
		       SD_MAX_SUBS);
		return -1;
	}
	s = natsConnection_Subscribe(sub, b->nc, subject, on_message, NULL);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(*sub, -1, -1);
	if (s != NATS_OK) {
		sd_log(LOG_ERR, "cannot subscribe to %s: %s", subject, natsStatus_GetText(s));
		natsSubscription_Destroy(*sub);
		*sub = NULL;
		return -1;
	}
	b->subs[i] = *sub;
	return 0;
}

void
sd_bus_unsubscribe(struct sd_bus *b, natsSubscription *sub)
{
	for (size_t i = 0; i < SD_MAX_SUBS; i++) {
		if (b->subs[i] == sub && sub != NULL) {
			natsSubscription_Unsubscribe(sub);
			natsSubscription_Destroy(sub);
			b->subs[i] = NULL;
		}
	}
}

/* ---- JetStream API requests ----------------------------------------------------- */

/* sd_bus_request(), waiting wait_ms for the answer. */
static int
request(struct sd_bus *b, const char *subject, const char *body, int64_t wait_ms, char **reply,
        char *err, size_t errlen)
{
	natsMsg *r = NULL;
	natsStatus s = natsConnection_RequestString(&r, b->nc, subject, body, wait_ms);
	const char *data;
	int len;

	*reply = NULL;
	if (s != NATS_OK) {
		snprintf(err, errlen, "%s", natsStatus_GetText(s));
		return -1;
	}
	data = natsMsg_GetData(r);
	len = natsMsg_GetDataLength(r);
	/* an API error is {"type":..., "error":{"code":...,"description":"..."}} */
	if (data == NULL || memmem(data, (size_t)len, "\"error\"", 7) != NULL) {
		snprintf(err, errlen, "%.*s", len > 300 ? 300 : len, data ? data : "no reply");
		natsMsg_Destroy(r);
		return -1;
	}
	if ((*reply = strndup(data, (size_t)len)) == NULL)
		snprintf(err, errlen, "out of memory");
	natsMsg_Destroy(r);
	return *reply != NULL ? 0 : -1;
}

int
sd_bus_request(struct sd_bus *b, const char *subject, const char *body, char **reply, char *err,
               size_t errlen)
{
	return request(b, subject, body, REQUEST_WAIT_MS, reply, err, errlen);
}

int
sd_bus_last(struct sd_bus *b, const char *entry, int64_t wait_ms, natsMsg **value, char *err,
            size_t errlen)
{
	char subject[256];
	natsStatus s;

	*value = NULL;
	snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s.%s%s", b->stream, b->kv_prefix,
	         entry);
	if ((s = natsConnection_Request(value, b->nc, subject, NULL, 0, wait_ms)) != NATS_OK) {
		snprintf(err, errlen, "%s", natsStatus_GetText(s));
		*value = NULL;
		return -1;
	}
	/* a value is never empty: an empty answer is a status (404: no such entry) */
	if (natsMsg_GetDataLength(*value) == 0) {
		natsMsg_Destroy(*value);
		*value = NULL;
	}
	return 0;
}

int
sd_bus_publish(struct sd_bus *b, const char *subject, const char *data, size_t len)
{
	natsStatus s = natsConnection_Publish(b->nc, subject, data, (int)len);

	if (s != NATS_OK)
		sd_log(LOG_DEBUG, "cannot publish on %s: %s", subject, natsStatus_GetText(s));
	return s == NATS_OK ? 0 : -1;
}

/* A fetch's reply: entry i of generation gen, from the reply subject <inbox>.f.<gen>.<i>. */
static int
fetch_index(const struct sd_bus *b, natsMsg *m, size_t n, size_t *i)
{
	const char *subject = natsMsg_GetSubject(m);
	size_t len = strlen(b->inbox);
	char *end;
	unsigned long long gen, idx;

	if (strncmp(subject, b->inbox, len) != 0 || strncmp(subject + len, ".f.", 3) != 0)
		return -1;
	gen = strtoull(subject + len + 3, &end, 10);
	if (*end != '.' || gen != b->fetch_gen)
		return -1;
	idx = strtoull(end + 1, &end, 10);
	if (*end != '\0' || idx >= n)
		return -1;
	*i = (size_t)idx;
	return 0;
}

int
sd_bus_fetch(struct sd_bus *b, const char *const *entries, size_t n,
             void (*got)(void *ctx, size_t i, natsMsg *m), void *ctx, char *err, size_t errlen)
{
	char subject[VK_ENTRY_MAX + 192], reply[160];
	unsigned char *answered = NULL;
	size_t sent = 0, done = 0, i;
	int denied = __atomic_load_n(&b->denied_get, __ATOMIC_SEQ_CST), rc = -1;
	int64_t last = sd_now_ms();

	if (n == 0)
		return 0;
	if (b->fetch_sub == NULL) {
		snprintf(subject, sizeof subject, "%s.f.>", b->inbox);
		if (natsConnection_SubscribeSync(&b->fetch_sub, b->nc, subject) != NATS_OK ||
		    natsSubscription_SetPendingLimits(b->fetch_sub, -1, -1) != NATS_OK) {
			snprintf(err, errlen, "cannot subscribe to %s", subject);
			natsSubscription_Destroy(b->fetch_sub);
			b->fetch_sub = NULL;
			return -1;
		}
	}
	if ((answered = calloc(n, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->fetch_gen++;
	while (done < n && !sd_stop) {
		natsMsg *m = NULL;
		natsStatus s;

		/* keep FETCH_WINDOW requests in flight */
		for (; sent < n && sent - done < FETCH_WINDOW; sent++) {
			snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s.%s%s", b->stream,
			         b->kv_prefix, entries[sent]);
			snprintf(reply, sizeof reply, "%s.f.%llu.%zu", b->inbox,
			         (unsigned long long)b->fetch_gen, sent);
			if (natsConnection_PublishRequest(b->nc, subject, reply, NULL, 0) !=
			    NATS_OK) {
				snprintf(err, errlen, "cannot read %s: %s", entries[sent],
				         nats_GetLastError(NULL));
				goto out;
			}
		}
		s = natsSubscription_NextMsg(&m, b->fetch_sub, FETCH_SLICE_MS);
		if (__atomic_load_n(&b->denied_get, __ATOMIC_SEQ_CST) != denied) {
			natsMsg_Destroy(m);
			snprintf(err, errlen, "the bus refused this user direct reads of %s",
			         entries[done]);
			rc = -2;
			goto out;
		}
		if (s == NATS_TIMEOUT) {
			if (sd_now_ms() - last >= REQUEST_WAIT_MS) {
				snprintf(err, errlen, "reading %s: Timeout", entries[done]);
				goto out;
			}
			/* a slow answer: the server may yet say the reads are refused */
			(void)natsConnection_FlushTimeout(b->nc, FETCH_SLICE_MS);
			continue;
		}
		if (s != NATS_OK) {
			snprintf(err, errlen, "reading %s: %s", entries[done],
			         natsStatus_GetText(s));
			goto out;
		}
		last = sd_now_ms();
		if (fetch_index(b, m, n, &i) != 0 || answered[i]) {
			natsMsg_Destroy(m); /* a late answer to an earlier fetch */
			continue;
		}
		if (natsMsg_IsNoResponders(m)) {
			natsMsg_Destroy(m);
			snprintf(err, errlen, "no bucket %s on the bus", b->cfg->bucket);
			goto out;
		}
		answered[i] = 1;
		done++;
		/* a value is never empty: an empty answer is a status (404: no such entry) */
		if (natsMsg_GetDataLength(m) == 0) {
			natsMsg_Destroy(m);
			m = NULL;
		}
		got(ctx, i, m);
	}
	rc = done == n ? 0 : -1;
	if (rc != 0)
		snprintf(err, errlen, "stopped");
out:
	free(answered);
	return rc;
}

/* The integer after "field": in json, or -1. */
static int64_t
json_int(const char *json, const char *field)
{
	const char *p = strstr(json, field);

	if (p == NULL)
		return -1;
	p += strlen(field);
	while (*p == ' ' || *p == ':')
		p++;
	return *p >= '0' && *p <= '9' ? strtoll(p, NULL, 10) : -1;
}

int64_t
sd_bus_consumer(struct sd_bus *b, const char *name, const char *filter, const char *deliver,
                char *err, size_t errlen)
{
	char subject[512], body[1024], *reply;
	int64_t pending;

	snprintf(subject, sizeof subject, "$JS.API.CONSUMER.CREATE.%s.%s.%s%s", b->stream, name,
	         b->kv_prefix, filter);
	snprintf(body, sizeof body,
	         "{\"stream_name\":\"%s\",\"config\":{\"name\":\"%s\",\"deliver_subject\":\"%s\","
	         "\"deliver_policy\":\"last_per_subject\",\"ack_policy\":\"none\","
	         "\"filter_subject\":\"%s%s\",\"inactive_threshold\":" CONSUMER_IDLE_NS ","
	         "\"mem_storage\":true,\"num_replicas\":1}}",
	         b->stream, name, deliver, b->kv_prefix, filter);
	if (request(b, subject, body, CONSUMER_WAIT_MS, &reply, err, errlen) != 0)
		return -1;
	pending = json_int(reply, "\"num_pending\"");
	free(reply);
	if (pending < 0)
		snprintf(err, errlen, "the consumer's reply has no num_pending");
	return pending;
}

void
sd_bus_consumer_done(struct sd_bus *b, const char *name)
{
	char subject[256], err[256], *reply;

	snprintf(subject, sizeof subject, "$JS.API.CONSUMER.DELETE.%s.%s", b->stream, name);
	if (sd_bus_request(b, subject, "", &reply, err, sizeof err) == 0)
		free(reply);
	/* else its inactive threshold removes it */
}

void
sd_stream_guard(jsStreamConfig *sc, int replicas)
{
	sc->Storage = js_FileStorage;
	sc->Replicas = replicas;
	sc->Discard = js_DiscardNew;
	sc->AllowRollup = false;
	sc->DenyDelete = true;
	sc->DenyPurge = true;
}

int
sd_stream_guarded(const jsStreamConfig *sc)
{
	return sc->DenyPurge && sc->DenyDelete && !sc->AllowRollup;
}

void
sd_random_tag(char tag[17])
{
	unsigned char raw[8];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(tag, 17, raw, sizeof raw);
}

int64_t
sd_msg_pending(natsMsg *m)
{
	const char *reply = natsMsg_GetReply(m), *last;

	/* $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> */
	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0 ||
	    (last = strrchr(reply, '.')) == NULL)
		return -1;
	return strtoll(last + 1, NULL, 10);
}

const char *
sd_msg_entry(const struct sd_bus *b, natsMsg *m)
{
	const char *subject = natsMsg_GetSubject(m);
	size_t kv = strlen(b->kv_prefix), live = strlen(b->live_prefix);

	if (strncmp(subject, b->kv_prefix, kv) == 0)
		return subject + kv;
	if (strncmp(subject, b->live_prefix, live) == 0)
		return subject + live;
	return NULL;
}
