/*
 * client_attrs.c - paho's smaller Client settings: the attributes of paho
 * 2.x (client.connect_timeout, client.logger, client.will_topic ...), the
 * logger of enable_logger()/disable_logger(), connect_timeout on the loop,
 * manual_ack_set()/ack(), message_retry_set() and mqlua's handler_budget.
 *
 * What manual ack means here: libmosquitto 2.0.11 sends PUBACK (QoS 1) and
 * PUBREC/PUBCOMP (QoS 2) itself before it calls on_message, so the broker
 * has its acknowledgement before the script sees the message, whatever the
 * script does. manual_ack_set(true) is recorded (client.manual_ack) and says
 * so in a warning; ack() checks its arguments and returns MQTT_ERR_SUCCESS
 * without sending anything.
 */
#include "bindings/client.h"
#include "bindings/rc.h"
#include "runtime/log.h"

#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/socket.h>

bool client_pre_connect(struct client *c)
{
	lua_State *L = client_callback_L(c);
	int top = lua_gettop(L);
	client_push(L, c);
	if (!lua_isnil(L, -1)) {
		lua_getiuservalue(L, top + 1, CLIENT_UV_FIELDS);
		if (lua_getfield(L, -1, "on_pre_connect") != LUA_TNIL) {
			lua_pushvalue(L, top + 1);
			lua_getiuservalue(L, top + 1, CLIENT_UV_USERDATA);
			client_pcall(c, L, 2, "on_pre_connect", NULL);
		}
	}
	lua_settop(L, top);
	return c->mosq && c->connect_requested;
}

/* ---- connect_timeout ---- */

static void connect_timer_cb(struct loop_timer *t)
{
	struct client *c = t->data;
	int fd = mosquitto_socket(c->mosq);
	if (c->connack_seen || fd < 0 || !c->connect_requested)
		return;
	/* libmosquitto has no call that drops a connection attempt: end the
	 * socket, and the next read reports the failed attempt as usual */
	c->connect_timed_out = true;
	shutdown(fd, SHUT_RDWR);
	client_sync_io(c);
}

void client_connect_timer_init(struct client *c)
{
	c->connect_timeout = 5.0;
	loop_timer_init(&c->connect_timer, connect_timer_cb, c);
	c->connect_timer.ref = false;
}

void client_arm_connect_timer(struct client *c, bool on)
{
	struct loop *loop = loop_default();
	if (!on) {
		loop_timer_stop(loop, &c->connect_timer);
		return;
	}
	if (!loop_timer_active(&c->connect_timer))
		loop_timer_start(loop, &c->connect_timer, c->connect_timeout, 0);
}

/* ---- the logger ---- */

/* The logger of enable_logger() without an argument: mqlua's own log, at
 * the matching level (debug lines are left to -v, which shows them). */
static int stderr_logger(lua_State *L)
{
	lua_Integer level = luaL_checkinteger(L, 1);
	const char *text = luaL_checkstring(L, 2);
	if (level == MOSQ_LOG_DEBUG)
		return 0;   /* -v shows libmosquitto's debug lines already */
	log_msg(level == MOSQ_LOG_ERR ? LOG_LEVEL_ERROR : level == MOSQ_LOG_WARNING ? LOG_LEVEL_WARN
	        : LOG_LEVEL_INFO, "%s", text);
	return 0;
}

/* Sets the logger (function at idx, or nil) in the client's fields. */
static void set_logger(lua_State *L, struct client *c, int idx)
{
	if (!lua_isnil(L, idx) && !lua_isfunction(L, idx))
		luaL_argerror(L, idx, lua_pushfstring(L, "logger must be a function(level, message) or nil, got %s",
		                                      luaL_typename(L, idx)));
	lua_getiuservalue(L, 1, CLIENT_UV_FIELDS);
	lua_pushvalue(L, idx);
	lua_setfield(L, -2, "logger");
	lua_pop(L, 1);
	c->has_logger = !lua_isnil(L, idx);
	client_update_log(c);
}

int client_check_budget(lua_State *L, int idx)
{
	if (lua_isnil(L, idx))
		return -1;
	int isnum;
	lua_Integer n = lua_tointegerx(L, idx, &isnum);
	luaL_argcheck(L, isnum && n >= 0 && n <= INT_MAX, idx,
	              "handler_budget must be a whole number of instructions (0: no budget)");
	return (int)n;
}

void client_logger_emit(struct client *c, int level, const char *text)
{
	if (!c->has_logger)
		return;
	lua_State *L = client_callback_L(c);
	int top = lua_gettop(L);
	client_push(L, c);
	if (!lua_isnil(L, -1)) {
		lua_getiuservalue(L, -1, CLIENT_UV_FIELDS);
		if (lua_getfield(L, -1, "logger") == LUA_TFUNCTION) {
			lua_pushinteger(L, level);
			lua_pushfstring(L, "client \"%s\": %s", c->client_id, text);
			client_pcall(c, L, 2, "logger", NULL);
		}
	}
	lua_settop(L, top);
}

/* client:enable_logger(logger=nil): logger(level, message) gets libmosquitto's
 * log lines with paho's MQTT_LOG_* levels; nil: mqlua's log on stderr. */
static int l_enable_logger(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_settop(L, 2);
	if (lua_isnil(L, 2)) {
		lua_pushcfunction(L, stderr_logger);
		lua_replace(L, 2);
	}
	set_logger(L, c, 2);
	return 0;
}

static int l_disable_logger(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_settop(L, 1);
	lua_pushnil(L);
	set_logger(L, c, 2);
	return 0;
}

/* ---- acknowledgements and retries ---- */

/* client:manual_ack_set(on) */
static int l_manual_ack_set(lua_State *L)
{
	struct client *c = client_check(L, 1);
	luaL_argcheck(L, lua_isboolean(L, 2), 2, "on must be a boolean");
	c->manual_ack = lua_toboolean(L, 2);
	if (c->manual_ack)
		log_warn("client \"%s\": manual_ack_set(true): libmosquitto acknowledges every message "
		         "before on_message runs; ack() cannot hold the acknowledgement back", c->client_id);
	return 0;
}

/* client:ack(mid, qos) -> MQTT_ERR_SUCCESS; see the top of this file. */
static int l_ack(lua_State *L)
{
	client_check(L, 1);
	lua_Integer mid = luaL_checkinteger(L, 2);
	luaL_argcheck(L, mid >= 0 && mid <= 65535, 2, "mid must be between 0 and 65535");
	client_check_qos(L, 3, -1);
	luaL_argcheck(L, !lua_isnoneornil(L, 3), 3, "qos must be 0, 1 or 2, got no value");
	lua_pushinteger(L, RC_SUCCESS);
	return 1;
}

/* client:message_retry_set(retry): accepted for paho 1.x scripts; MQTT 3.1.1
 * and 5 resend only after a reconnect, which mqlua does from its store. */
static int l_message_retry_set(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_Number retry = luaL_checknumber(L, 2);
	luaL_argcheck(L, retry >= 0, 2, "retry must not be negative");
	c->message_retry = retry;
	return 0;
}

/* client:enable_bridge_mode() raises: libmosquitto's client cannot send the
 * bridge bit of CONNECT; a bridge is mosquitto's own job. */
static int l_enable_bridge_mode(lua_State *L)
{
	client_check(L, 1);
	return luaL_error(L, "enable_bridge_mode is not supported: libmosquitto cannot mark a client "
	                  "as a bridge; run a mosquitto bridge instead (mqlua.broker.start{config = "
	                  "\"connection ...\"})");
}

const luaL_Reg client_attrs_methods[] = {
	{ "enable_bridge_mode", l_enable_bridge_mode },
	{ "enable_logger", l_enable_logger },
	{ "disable_logger", l_disable_logger },
	{ "manual_ack_set", l_manual_ack_set },
	{ "ack", l_ack },
	{ "message_retry_set", l_message_retry_set },
	{ NULL, NULL }
};

/* ---- attributes ---- */

int client_attr_get(lua_State *L, struct client *c, const char *k)
{
	if (strcmp(k, "connect_timeout") == 0)
		lua_pushnumber(L, c->connect_timeout);
	else if (strcmp(k, "max_inflight_messages") == 0)
		lua_pushinteger(L, c->max_inflight);
	else if (strcmp(k, "max_queued_messages") == 0)
		lua_pushinteger(L, c->max_queued);
	else if (strcmp(k, "will_topic") == 0)
		lua_pushstring(L, c->will.topic);
	else if (strcmp(k, "will_payload") == 0)
		c->will.topic ? (void)lua_pushlstring(L, c->will.payload, (size_t)c->will.payloadlen) : lua_pushnil(L);
	else if (strcmp(k, "manual_ack") == 0)
		lua_pushboolean(L, c->manual_ack);
	else if (strcmp(k, "suppress_exceptions") == 0)
		lua_pushboolean(L, 1);
	else if (strcmp(k, "password") == 0)
		lua_pushnil(L);     /* write-only: see username_pw_set */
	else if (strcmp(k, "callback_api_version") == 0)
		callback_api_version_push(L, c->callback_api);
	else if (strcmp(k, "handler_budget") == 0)
		c->handler_budget < 0 ? lua_pushnil(L) : lua_pushinteger(L, c->handler_budget);
	else
		return 0;
	return 1;
}

/* Raises paho's RuntimeError text when c has an open connection. */
static void check_closed(lua_State *L, struct client *c, const char *k)
{
	if (c->connected || mosquitto_socket(c->mosq) >= 0)
		luaL_error(L, "updating %s on established connection is not supported", k);
}

/* Calls the method `name` of the client at 1 with the value at 3. */
static void call_setter(lua_State *L, const char *name)
{
	lua_getfield(L, 1, name);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 3);
	lua_call(L, 2, 0);
}

int client_attr_set(lua_State *L, struct client *c, const char *k)
{
	static const char *const read_only[] = { "client_id", "protocol", "clean_session", "will_topic",
		"will_payload", "manual_ack", "username", "password", "transport", "callback_api_version", NULL };
	static const char *const instead[] = { "reinitialise()", "Client(..., protocol)", "reinitialise()",
		"will_set()", "will_set()", "manual_ack_set()", "username_pw_set()", "username_pw_set()",
		"Client(..., transport)", "Client(callback_api_version, ...)" };
	for (int i = 0; read_only[i]; i++)
		if (strcmp(k, read_only[i]) == 0)
			return luaL_error(L, "%s is read-only: use %s", k, instead[i]);
	if (strcmp(k, "host") == 0) {
		check_closed(L, c, k);
		const char *host = luaL_checkstring(L, 3);
		luaL_argcheck(L, *host, 3, "host must not be empty");
		client_set_string(&c->host, host);
		c->retarget = true;
	} else if (strcmp(k, "port") == 0) {
		check_closed(L, c, k);
		lua_Integer port = luaL_checkinteger(L, 3);
		luaL_argcheck(L, port > 0 && port <= 65535, 3, "port must be between 1 and 65535");
		c->port = (int)port;
		c->retarget = true;
	} else if (strcmp(k, "keepalive") == 0) {
		check_closed(L, c, k);
		lua_Integer keepalive = luaL_checkinteger(L, 3);
		luaL_argcheck(L, keepalive == 0 || (keepalive >= 5 && keepalive <= 65535), 3,
		              "keepalive must be 0 (off) or between 5 and 65535");
		c->keepalive = (int)keepalive;
		c->retarget = true;
	} else if (strcmp(k, "connect_timeout") == 0) {
		check_closed(L, c, k);
		lua_Number s = luaL_checknumber(L, 3);
		luaL_argcheck(L, s > 0, 3, "connect_timeout must be a positive number");
		c->connect_timeout = s;
	} else if (strcmp(k, "handler_budget") == 0) {
		c->handler_budget = client_check_budget(L, 3);
	} else if (strcmp(k, "max_inflight_messages") == 0) {
		check_closed(L, c, k);
		call_setter(L, "max_inflight_messages_set");
	} else if (strcmp(k, "max_queued_messages") == 0) {
		check_closed(L, c, k);
		call_setter(L, "max_queued_messages_set");
	} else if (strcmp(k, "logger") == 0) {
		set_logger(L, c, 3);
	} else if (strcmp(k, "suppress_exceptions") == 0) {
		luaL_argcheck(L, lua_toboolean(L, 3), 3, "suppress_exceptions cannot be false in mqlua: an error in "
		              "a callback is always logged with its traceback and the loop goes on");
	} else {
		return 0;
	}
	return 1;
}
