/*
 * stats_pub.c - publishing mqlua.stats() as JSON, retained, at QoS 0:
 * Client{stats_topic = T, stats_interval = S} through that client, and
 * --stats-topic T (--stats-interval S) through the first connected client
 * (the one made first). Only while connected, straight to libmosquitto: a
 * stats message is never queued in the store, never counted in
 * messages_out, and never reaches the script's on_publish. A client that
 * disconnects cleanly clears the topics it carried (an empty retained
 * message), so a document that stays is either fresh (`time`) or left by a
 * process that died.
 */
#include "bindings/client.h"
#include "bindings/stats.h"
#include "runtime/log.h"

#include <stdlib.h>
#include <string.h>

static struct {
	char *topic;
	double interval;
	struct loop_timer timer;
	struct client *carrier;      /* the client that published it last */
} proc;

/* Pushes the JSON encoding of the stats document, or returns false (logged once). */
static bool push_json(lua_State *L)
{
	static bool warned;
	int top = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	if (lua_getfield(L, -1, "mqlua") == LUA_TTABLE && lua_getfield(L, -1, "json") == LUA_TTABLE &&
	    lua_getfield(L, -1, "encode") == LUA_TFUNCTION) {
		lua_pushcfunction(L, stats_l_stats);
		if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1)) {
			lua_replace(L, top + 1);
			lua_settop(L, top + 1);
			return true;
		}
		if (!warned)
			log_error("stats: cannot encode the document: %s", lua_tostring(L, -1));
	} else if (!warned) {
		log_error("stats: publishing needs mqlua.json (Debian's lua-cjson)");
	}
	warned = true;
	lua_settop(L, top);
	return false;
}

/* Publishes payload (len bytes) retained at QoS 0 on topic through c. */
static void publish_raw(struct client *c, const char *topic, const char *payload, size_t len)
{
	int mid = 0;
	c->publishing = true;          /* an immediate on_publish is recorded, not passed on */
	c->early_published_mid = 0;
	int rc = mosquitto_publish_v5(c->mosq, &mid, topic, (int)len, payload, 0, true, NULL);
	c->publishing = false;
	if (rc != MOSQ_ERR_SUCCESS) {
		log_debug("client \"%s\": stats not published: %s", c->client_id, mosquitto_strerror(rc));
		return;
	}
	c->stats->pending_mid = c->early_published_mid == mid ? 0 : mid;
	client_sync_io(c);
}

static void publish_document(struct client *c, const char *topic)
{
	lua_State *L = client_callback_L(c);
	if (!push_json(L))
		return;
	size_t len;
	const char *json = lua_tolstring(L, -1, &len);
	publish_raw(c, topic, json, len);
	lua_pop(L, 1);
}

static void client_tick(struct loop_timer *t)
{
	struct client *c = t->data;
	if (c->mosq && c->connected)
		publish_document(c, c->stats->topic);
}

/* The first client made (client_all lists the newest first) that is connected. */
static struct client *first_connected(void)
{
	struct client *found = NULL;
	for (struct client *c = client_all; c; c = c->next)
		if (c->mosq && c->connected)
			found = c;
	return found;
}

static void process_tick(struct loop_timer *t)
{
	(void)t;
	struct client *c = first_connected();
	if (!c)
		return;
	proc.carrier = c;
	publish_document(c, proc.topic);
}

static bool valid_topic(const char *topic)
{
	return topic && topic_check_name(topic, strlen(topic)) == NULL;
}

void stats_client_options(lua_State *L, struct client *c, int idx)
{
	if (lua_isnil(L, idx)) {
		luaL_argcheck(L, lua_isnil(L, idx + 1), idx + 1, "stats_interval needs a stats_topic");
		return;
	}
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_argerror(L, idx, lua_pushfstring(L, "stats_topic must be a string, got %s", luaL_typename(L, idx)));
	const char *why = topic_check_name(lua_tostring(L, idx), lua_rawlen(L, idx));
	if (why)
		luaL_argerror(L, idx, lua_pushfstring(L, "stats_topic %s", why));
	double interval = luaL_optnumber(L, idx + 1, 10);
	luaL_argcheck(L, interval > 0, idx + 1, "stats_interval must be a positive number of seconds");
	client_set_string(&c->stats->topic, lua_tostring(L, idx));
	if (!c->stats->topic)
		luaL_error(L, "out of memory");
	c->stats->interval = interval;
	loop_timer_init(&c->stats->timer, client_tick, c);
	c->stats->timer.ref = false;   /* stats never keep the process alive */
	loop_timer_start(loop_default(), &c->stats->timer, interval, interval);
}

void stats_set_process_topic(const char *topic, double interval)
{
	if (!valid_topic(topic) || !(interval > 0))
		return;
	free(proc.topic);
	proc.topic = strdup(topic);
	proc.interval = interval;
	loop_timer_init(&proc.timer, process_tick, NULL);
	proc.timer.ref = false;
	loop_timer_start(loop_default(), &proc.timer, interval, interval);
}

void stats_client_disconnecting(struct client *c)
{
	if (!c->mosq || !c->connected)
		return;
	if (c->stats->topic)
		publish_raw(c, c->stats->topic, "", 0);
	if (proc.topic && proc.carrier == c) {
		publish_raw(c, proc.topic, "", 0);
		proc.carrier = NULL;
	}
}

bool stats_owns_mid(struct client *c, int mid)
{
	if (!c->stats->pending_mid || c->stats->pending_mid != mid)
		return false;
	c->stats->pending_mid = 0;
	return true;
}

void stats_client_close(struct client *c)
{
	if (!c->stats)
		return;
	if (c->stats->topic)
		loop_timer_stop(loop_default(), &c->stats->timer);
	if (proc.carrier == c)
		proc.carrier = NULL;
}
