/*
 * client_outbox.c - the store in front of a client's QoS>0 publishing.
 *
 * publish() appends a row inside the loop iteration's transaction and
 * returns the row id as the message id. Once the loop has committed, the
 * dispatch hands rows to libmosquitto in id order, only while connected and
 * at most max_inflight at a time, remembering which packet id carries which
 * row. The ack deletes the row (a v5 refusal moves it to the dead letters).
 * libmosquitto resends what it holds after a reconnect; a new process starts
 * again from the first row of its client_id.
 */
#include "bindings/client.h"
#include "bindings/properties.h"
#include "bindings/rc.h"
#include "runtime/log.h"
#include "store/outbox.h"
#include "store/store.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <mqtt_protocol.h>

#define DEFAULT_INFLIGHT 20

static int check_option(lua_State *L, int idx, const char *name, const char *const choices[], int def)
{
	if (lua_isnoneornil(L, idx))
		return def;
	const char *v = lua_tostring(L, idx);
	for (int i = 0; v && choices[i]; i++)
		if (strcmp(v, choices[i]) == 0)
			return i;
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "%s must be one of ", name);
	luaL_addvalue(&b);
	for (int i = 0; choices[i]; i++) {
		luaL_addstring(&b, choices[i]);
		if (choices[i + 1])
			luaL_addstring(&b, ", ");
	}
	luaL_pushresult(&b);
	return luaL_argerror(L, idx, lua_tostring(L, -1));
}

void client_outbox_open(lua_State *L, struct client *c, int idx)
{
	static const char *const durabilities[] = { "memory", "normal", "full", NULL };
	static const char *const policies[] = { "error", "drop_oldest", NULL };
	const char *path = NULL;
	int durability = STORE_NORMAL;
	if (lua_isstring(L, idx) && !lua_isnumber(L, idx))
		path = lua_tostring(L, idx);
	else if (lua_isboolean(L, idx) && !lua_toboolean(L, idx))
		durability = STORE_MEMORY;
	else if (!lua_isnoneornil(L, idx))
		luaL_argerror(L, idx, "store must be a file path or false");
	if (durability != STORE_MEMORY)
		durability = check_option(L, idx + 1, "durability", durabilities, STORE_NORMAL);
	c->drop_oldest = check_option(L, idx + 2, "queue_policy", policies, 0) == 1;
	c->queue_qos0 = mqlua_optboolean(L, idx + 3, false, "queue_qos0");
	if (c->random_id)
		durability = STORE_MEMORY;   /* nobody could claim its queue after a restart */

	char err[2048];
	struct store *s = mqlua_store(path, durability, err, sizeof err);
	if (!s || store_claim(s, c->client_id, err, sizeof err) != 0)
		luaL_error(L, "%s", err);
	c->store = s;
	c->max_inflight = DEFAULT_INFLIGHT;
	c->inflight = calloc(c->max_inflight, sizeof *c->inflight);
	if (!c->inflight)
		luaL_error(L, "out of memory");
	c->queued = -1;
	c->backlog = true;
	int64_t stale_qos2 = c->clean_session ? 0 : outbox_count_qos(s, c->client_id, 2);
	if (stale_qos2 > 0)
		log_warn("client \"%s\": %lld QoS 2 messages of an earlier process are queued; with "
		         "clean_session = false the broker may still hold their unfinished exchanges, which "
		         "libmosquitto cannot resume (their packet ids are gone): publish QoS 2 with "
		         "clean_session = true", c->client_id, (long long)stale_qos2);
}

void client_outbox_close(struct client *c)
{
	if (c->store && !c->random_id)
		store_release(c->store, c->client_id);
	c->store = NULL;
	free(c->inflight);
	c->inflight = NULL;
	c->ninflight = 0;
}

static int64_t queued(struct client *c)
{
	if (c->queued < 0)
		c->queued = outbox_count(c->store, c->client_id);
	return c->queued;
}

int64_t client_outbox_publish(struct client *c, const char *topic, const void *payload, size_t len,
                              int qos, bool retain, const mosquitto_property *props, int *rc)
{
	*rc = RC_SUCCESS;
	unsigned char *pbytes = NULL;
	size_t plen = 0;
	if (props && properties_encode(props, &pbytes, &plen) != 0) {
		*rc = RC_NOMEM;
		return 0;
	}
	if (c->max_queued > 0 && queued(c) >= c->max_queued) {
		if (!c->drop_oldest) {
			free(pbytes);
			*rc = RC_QUEUE_SIZE;
			return 0;
		}
		if (outbox_drop_oldest(c->store, c->client_id) == 0)
			c->queued--;
	}
	if (c->random_id && qos > 0) {
		static bool warned;
		if (!warned)
			log_warn("client \"%s\" has a generated client_id: its queued messages live in memory "
			         "and are lost if the process ends (give the client a client_id)", c->client_id);
		warned = true;
	}
	int64_t id = outbox_append(c->store, c->client_id, topic, payload, len, qos, retain, pbytes, plen);
	free(pbytes);
	if (id < 0) {
		log_error("client \"%s\": %s", c->client_id, store_error(c->store));
		*rc = RC_ERRNO;
		return 0;
	}
	if (!c->txn_first)
		c->txn_first = id;
	if (c->queued >= 0)
		c->queued++;
	c->backlog = true;
	if (c->store_failed) {
		/* after a failed commit (a full disk), each publish commits at once,
		 * so that its return code tells whether it was stored */
		mqlua_store_commit_all();
		if (c->store_failed) {
			*rc = RC_ERRNO;
			return 0;
		}
	}
	return id;
}

void client_outbox_committed(struct client *c)
{
	c->txn_first = 0;
	if (c->store_failed)
		log_info("client \"%s\": the store accepts writes again", c->client_id);
	c->store_failed = false;
}

void client_outbox_commit_failed(struct client *c, const char *why)
{
	(void)why;
	if (c->txn_first) {
		lua_State *L = client_callback_L(c);
		client_fail_infos(L, c, c->txn_first, RC_ERRNO);
	}
	c->txn_first = 0;
	c->queued = -1;
	c->store_failed = true;
}

/* The send window: ours, or the broker's Receive Maximum when smaller. */
static int window(const struct client *c)
{
	int w = c->max_inflight;
	if (c->broker_receive_max > 0 && c->broker_receive_max < w)
		w = c->broker_receive_max;
	return w;
}

struct dispatch { struct client *c; bool stopped; };

/* A message whose MessageExpiryInterval ran out while it waited in the queue
 * is not sent: its row goes and its info is done, unpublished. */
static void drop_expired(struct client *c, const struct outbox_msg *m, double waited)
{
	log_warn("client \"%s\": message %lld to \"%s\" expired after waiting %.0f s in the queue; not sent",
	         c->client_id, (long long)m->id, m->topic, waited);
	c->sent_upto = m->id;
	if (outbox_ack(c->store, m->id) != 0)
		log_error("client \"%s\": %s", c->client_id, store_error(c->store));
	if (c->queued > 0)
		c->queued--;
	client_publish_done(client_callback_L(c), c, m->id, MQTT_RC_UNSPECIFIED);
}

static bool send_one(const struct outbox_msg *m, void *ud)
{
	struct dispatch *d = ud;
	struct client *c = d->c;
	mosquitto_property *props = NULL;
	if (m->propslen > 0) {
		double waited = store_now() - m->created;
		bool expired;
		/* a created time from a damaged row may be anything: keep the cast defined */
		uint32_t aged = !(waited > 0) ? 0 : waited >= UINT32_MAX ? UINT32_MAX : (uint32_t)waited;
		props = properties_decode_aged(m->props, (size_t)m->propslen, aged, &expired);
		if (expired) {
			mosquitto_property_free_all(&props);
			drop_expired(c, m, waited);
			return true;
		}
		if (!props)
			log_error("client \"%s\": the properties of message %lld cannot be read; sent without them",
			          c->client_id, (long long)m->id);
	}
	if (c->protocol != MQTT_PROTOCOL_V5)
		mosquitto_property_free_all(&props);   /* queued by an MQTT v5 client of the same id */
	int mid = 0;
	c->publishing = true;
	c->early_published_mid = 0;
	int rc = mosquitto_publish_v5(c->mosq, &mid, m->topic, m->payloadlen, m->payload, m->qos, m->retain, props);
	mosquitto_property_free_all(&props);
	c->publishing = false;
	if (rc != MOSQ_ERR_SUCCESS) {
		d->stopped = true;
		return false;
	}
	c->sent_upto = m->id;
	c->inflight[c->ninflight++] = (struct inflight){ mid, m->id };
	c->stats->published[m->qos]++;
	c->stats->bytes_out += (uint64_t)m->payloadlen;
	if (m->qos == 0 && c->early_published_mid == mid) {
		/* a queued QoS 0 message is done once written, which happened just now */
		client_outbox_acked(c, mid, 0);
		client_notify_published(client_callback_L(c), c, m->id, 0);
	}
	return c->ninflight < window(c);
}

void client_outbox_dispatch(struct client *c)
{
	if (!c->store || !c->connected || !c->backlog || c->ninflight >= window(c) ||
	    store_has_urgent(c->store) || store_untouched(c->store))
		return;
	int room = window(c) - c->ninflight;
	struct dispatch d = { c, false };
	int n = outbox_fetch(c->store, c->client_id, c->sent_upto, room, send_one, &d);
	if (n < 0)
		log_error("client \"%s\": %s", c->client_id, store_error(c->store));
	else if (n < room && !d.stopped)
		c->backlog = false;
	client_sync_io(c);
}

int64_t client_outbox_acked(struct client *c, int mid, int reason)
{
	if (!c->store)
		return 0;
	for (int i = 0; i < c->ninflight; i++) {
		if (c->inflight[i].mid != mid)
			continue;
		int64_t id = c->inflight[i].id;
		c->inflight[i] = c->inflight[--c->ninflight];
		int rc = reason >= 0x80 ? outbox_dead(c->store, id, reason, mosquitto_reason_string(reason))
		                        : outbox_ack(c->store, id);
		if (rc != 0)
			log_error("client \"%s\": %s", c->client_id, store_error(c->store));
		if (reason >= 0x80) {
			c->stats->dead_letters++;
			log_warn("client \"%s\": the broker refused message %lld: %s (kept in dead_letters())",
			         c->client_id, (long long)id, mosquitto_reason_string(reason));
		}
		if (c->queued > 0)
			c->queued--;
		return id;
	}
	return 0;
}

/* ---- Lua methods ---- */

/* client:max_queued_messages_set(n): 0 = unlimited (the disk is the limit) */
int client_max_queued_messages_set(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_argcheck(L, n >= 0, 2, "queue_size must not be negative");
	c->max_queued = n;
	lua_settop(L, 1);
	return 1;
}

int64_t client_outbox_depth(struct client *c)
{
	return queued(c);
}

struct store *client_need_store(lua_State *L, struct client *c)
{
	if (!c->store)
		luaL_error(L, "client \"%s\" has no store: its last reinitialise() failed (call reinitialise() again)",
		           c->client_id ? c->client_id : "");
	return c->store;
}

int client_queue_depth(lua_State *L)
{
	struct client *c = client_check(L, 1);
	client_need_store(L, c);
	lua_pushinteger(L, queued(c));
	return 1;
}

/* client:queue_oldest_age() -> seconds the oldest queued message has waited (0: none) */
int client_queue_oldest_age(lua_State *L)
{
	struct client *c = client_check(L, 1);
	double oldest = outbox_oldest(client_need_store(L, c), c->client_id);
	lua_pushnumber(L, oldest > 0 ? store_now() - oldest : 0);
	return 1;
}

static bool push_dead(const struct outbox_msg *m, int reason, const char *text, double failed, void *ud)
{
	lua_State *L = ud;
	lua_createtable(L, 0, 9);
	lua_pushinteger(L, m->id);
	lua_setfield(L, -2, "mid");
	lua_pushstring(L, m->topic);
	lua_setfield(L, -2, "topic");
	lua_pushlstring(L, m->payload, m->payloadlen);
	lua_setfield(L, -2, "payload");
	lua_pushinteger(L, m->qos);
	lua_setfield(L, -2, "qos");
	lua_pushboolean(L, m->retain);
	lua_setfield(L, -2, "retain");
	lua_pushinteger(L, reason);
	lua_setfield(L, -2, "reason");
	lua_pushstring(L, text ? text : "");
	lua_setfield(L, -2, "reason_text");
	lua_pushnumber(L, m->created);
	lua_setfield(L, -2, "created");
	lua_pushnumber(L, failed);
	lua_setfield(L, -2, "failed");
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	return true;
}

/* client:dead_letters(max=100) -> the messages the broker refused, newest first */
int client_dead_letters(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_Integer max = luaL_optinteger(L, 2, 100);
	luaL_argcheck(L, max > 0, 2, "max must be positive");
	client_need_store(L, c);
	lua_newtable(L);
	if (outbox_dead_letters(c->store, c->client_id, max > INT_MAX ? INT_MAX : (int)max, push_dead, L) < 0)
		return luaL_error(L, "%s", store_error(c->store));
	return 1;
}
