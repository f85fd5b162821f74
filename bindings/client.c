/*
 * client.c - the Client type's Lua face: construction, paho's methods with
 * their names, argument order and keyword-table form, argument checking
 * with errors that name the argument. Publishing is in client_pub.c, the
 * connection's life on the loop in client_net.c.
 */
#include "bindings/client.h"
#include "bindings/properties.h"
#include "bindings/rc.h"
#include "bindings/retained.h"
#include "runtime/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mqtt_protocol.h>

struct client *client_all;

static const char *const callback_names[] = {
	"on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe",
	"on_unsubscribe", "on_log", "on_connect_fail", "on_pre_connect", NULL
};

/* ---- lifetime ---- */

struct client *client_check(lua_State *L, int idx)
{
	struct client *c = luaL_checkudata(L, idx, MQLUA_CLIENT_T);
	if (!c->mosq)
		luaL_error(L, "attempt to use a closed Client");
	return c;
}

/* registry[&weak_key] maps struct client* to its userdata, weakly. */
static const char weak_key = 'c';

void client_push(lua_State *L, struct client *c)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &weak_key);
	lua_rawgetp(L, -1, c);
	lua_remove(L, -2);
}

void client_set_string(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

void client_wipe_string(char **s)
{
	if (*s)
		memset(*s, 0, strlen(*s));
	free(*s);
	*s = NULL;
}

static void client_close(struct client *c)
{
	if (c->stats) {
		stats_client_close(c);
		stats_client_release(c->stats);
		c->stats = NULL;
	}
	if (!c->mosq)
		return;
	client_stop_net(c);
	client_outbox_close(c);
	client_auth_free(c);
	mosquitto_destroy(c->mosq);
	c->mosq = NULL;
	for (struct client **p = &client_all; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	client_set_string(&c->client_id, NULL);
	client_set_string(&c->transport, NULL);
	client_transport_close(c);
	client_set_string(&c->host, NULL);
	client_set_string(&c->bind_address, NULL);
	client_set_string(&c->username, NULL);
	client_wipe_string(&c->tls_keyfile_password);
}

static void client_disconnect_all(void)
{
	for (struct client *c = client_all; c; c = c->next) {
		c->connect_requested = false;
		loop_timer_stop(loop_default(), &c->reconnect_timer);
		stats_client_disconnecting(c);
		if (!c->connected || mosquitto_disconnect(c->mosq) != MOSQ_ERR_SUCCESS)
			client_detach(c);   /* nothing to flush; otherwise on_disconnect detaches */
		else
			client_sync_io(c);
	}
}

static bool none_attached(void *ud)
{
	(void)ud;
	for (struct client *c = client_all; c; c = c->next)
		if (c->attached)
			return false;
	return true;
}

bool client_shutdown(double timeout)
{
	client_disconnect_all();
	int saved = mqlua_interrupted;
	mqlua_interrupted = 0;    /* mqlua_wait must run the loop once more */
	bool done = mqlua_wait(none_attached, NULL, timeout);
	mqlua_interrupted = saved;
	return done;
}

static void new_uv_table(lua_State *L, int idx, int slot, const char *mode)
{
	lua_newtable(L);
	if (mode) {
		lua_createtable(L, 0, 1);
		lua_pushstring(L, mode);
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
	}
	lua_setiuservalue(L, idx, slot);
}

static void reset_uv_tables(lua_State *L, int idx)
{
	new_uv_table(L, idx, CLIENT_UV_FIELDS, NULL);
	lua_pushnil(L);   /* message_callback_add's set (filter_trie.h), made by the first add */
	lua_setiuservalue(L, idx, CLIENT_UV_FILTERS);
	new_uv_table(L, idx, CLIENT_UV_SUBS, NULL);
	new_uv_table(L, idx, CLIENT_UV_INFOS, "v");
	new_uv_table(L, idx, CLIENT_UV_TOUCHED, NULL);
	new_uv_table(L, idx, CLIENT_UV_SUBGROUPS, NULL);
}

/* Checks the client_id and clean_session arguments at id_idx and clean_idx
 * (absolute indexes) for protocol proto, changing nothing; raises naming the
 * bad one, also for any explicit clean_session with MQTT v5 (as paho:
 * connect's clean_start takes its place). */
static void check_identity(lua_State *L, int id_idx, int clean_idx, int proto)
{
	size_t idlen;
	const char *id = luaL_optlstring(L, id_idx, "", &idlen);
	if (proto == MQTT_PROTOCOL_V5 && !lua_isnil(L, clean_idx))
		luaL_argerror(L, clean_idx, "clean_session is not used for MQTT 5.0 "
		              "(leave it out and use connect(clean_start = ...))");
	bool clean = mqlua_optboolean(L, clean_idx, true, "clean_session");
	if (idlen == 0 && !clean)
		luaL_argerror(L, id_idx, "a client_id must be provided if clean_session is false");
	if (idlen > 65535)
		luaL_argerror(L, id_idx, "client_id is longer than 65535 bytes");
	if (idlen > 0 && (memchr(id, 0, idlen) || mosquitto_validate_utf8(id, (int)idlen) != MOSQ_ERR_SUCCESS))
		luaL_argerror(L, id_idx, "client_id must be valid UTF-8 without NUL characters");
}

/* Checks client_id/clean_session at id_idx/clean_idx (absolute indexes) and
 * configures c->mosq for them and proto. Raises on invalid arguments. */
static void configure_identity(lua_State *L, struct client *c, int id_idx, int clean_idx, int proto)
{
	check_identity(L, id_idx, clean_idx, proto);
	size_t idlen;
	const char *id = luaL_optlstring(L, id_idx, "", &idlen);
	bool clean = mqlua_optboolean(L, clean_idx, true, "clean_session");
	char random_id[32];
	c->random_id = idlen == 0;
	if (idlen == 0) {
		/* libmosquitto cannot send a zero-length id: make one up, as paho does for MQTT 3.1,
		 * of 0-9a-zA-Z only: all a 3.1.1 server has to accept [MQTT-3.1.3-5] */
		snprintf(random_id, sizeof random_id, "mqlua%08lx%04x", (unsigned long)lrand48(), (unsigned)getpid() & 0xffff);
		id = random_id;
	}
	client_set_string(&c->client_id, id);
	c->clean_session = clean;
	c->handle_clean = clean;
	c->protocol = proto;
	int rc = c->mosq ? mosquitto_reinitialise(c->mosq, id, clean, c) : MOSQ_ERR_SUCCESS;
	if (!c->mosq)
		c->mosq = mosquitto_new(id, clean, c);
	if (!c->mosq || rc != MOSQ_ERR_SUCCESS)
		luaL_error(L, "cannot create the client: %s", mosquitto_strerror(c->mosq ? rc : errno == EINVAL ? MOSQ_ERR_INVAL : MOSQ_ERR_NOMEM));
	mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, proto);
	client_set_callbacks(c);
}

static int check_protocol(lua_State *L, int idx)
{
	lua_Integer p = luaL_optinteger(L, idx, MQTT_PROTOCOL_V311);
	if (p != MQTT_PROTOCOL_V31 && p != MQTT_PROTOCOL_V311 && p != MQTT_PROTOCOL_V5)
		luaL_argerror(L, idx, "protocol must be mqtt.MQTTv31, mqtt.MQTTv311 or mqtt.MQTTv5");
	return (int)p;
}

/* mqtt.Client([callback_api_version,] client_id="", clean_session=true, userdata=nil, protocol=MQTTv311,
 * transport="tcp"); callback_api_version only as a CallbackAPIVersion value (paho 2.x's first argument);
 * mqlua's options (store, durability, queue_policy, queue_qos0, handler_budget) by name */
int client_new(lua_State *L)
{
	static const char *const names[] = { "client_id", "clean_session", "userdata", "protocol", "transport",
		"store", "durability", "queue_policy", "queue_qos0", "callback_api_version", "stats_topic",
		"stats_interval", "handler_budget", NULL };
	int api = callback_api_version(L, 1);
	if (api)
		lua_remove(L, 1);
	if (lua_gettop(L) == 1 && lua_istable(L, 1) && lua_rawlen(L, 1) == 0) {
		lua_pushnil(L);
		lua_settop(L, lua_next(L, 1) ? 1 : 0);   /* Client{}: every argument left out */
	}
	mqlua_named_args(L, 1, names);
	lua_settop(L, 13);
	if (mqlua_run_mode && lua_type(L, 1) == LUA_TSTRING && owner_reuse_client(L, lua_tostring(L, 1)))
		return 1;   /* a reloaded script: the connection of its previous version stays */
	if (!api && !lua_isnil(L, 10) && !(api = callback_api_version(L, 10)))
		luaL_argerror(L, 10, "callback_api_version must be mqtt.CallbackAPIVersion.VERSION1 or VERSION2");
	int proto = check_protocol(L, 4);
	int budget = client_check_budget(L, 13);

	struct client *c = lua_newuserdatauv(L, sizeof *c, CLIENT_NUV);
	memset(c, 0, sizeof *c);
	c->anchor = LUA_NOREF;
	c->reconnect_min = 1;
	c->reconnect_max = 120;
	c->callback_api = api ? api : 1;
	c->handler_budget = budget;
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	c->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	client_net_init(c);
	luaL_setmetatable(L, MQLUA_CLIENT_T);
	if (!(c->stats = stats_client_new()))
		return luaL_error(L, "out of memory");
	int self = lua_gettop(L);
	reset_uv_tables(L, self);
	lua_pushvalue(L, 3);
	lua_setiuservalue(L, self, CLIENT_UV_USERDATA);

	lua_rawgetp(L, LUA_REGISTRYINDEX, &weak_key);
	lua_pushvalue(L, self);
	lua_rawsetp(L, -2, c);
	lua_pop(L, 1);

	configure_identity(L, c, 1, 2, proto);   /* may raise: __gc cleans up */
	client_transport_init(L, c, 5);
	c->next = client_all;
	client_all = c;
	client_outbox_open(L, c, 6);
	stats_client_options(L, c, 11);
	owner_client_made(L, self);
	lua_settop(L, self);
	return 1;
}

/* client:reinitialise(client_id="", clean_session=true, userdata=nil) */
static int l_reinitialise(lua_State *L)
{
	static const char *const names[] = { "client_id", "clean_session", "userdata", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 4);
	check_identity(L, 2, 3, c->protocol);   /* before anything is torn down: a bad argument leaves c as it was */
	client_detach(c);
	c->connect_requested = c->connected = false;
	reset_uv_tables(L, 1);
	lua_pushvalue(L, 4);
	lua_setiuservalue(L, 1, CLIENT_UV_USERDATA);
	client_set_string(&c->username, NULL);
	client_wipe_string(&c->tls_keyfile_password);
	client_auth_free(c);
	c->tls = false;
	c->session_started = false;
	client_outbox_close(c);
	configure_identity(L, c, 2, 3, c->protocol);
	lua_settop(L, 4);
	client_outbox_open(L, c, 5);    /* the defaults again, as paho's reinitialise */
	return 0;
}

static int l_gc(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, MQLUA_CLIENT_T);
	client_close(c);
	return 0;
}

/* __close: a to-be-closed client disconnects cleanly and is released. */
static int l_close(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, MQLUA_CLIENT_T);
	if (c->mosq && c->connected) {
		c->connect_requested = false;
		stats_client_disconnecting(c);
		mosquitto_disconnect(c->mosq);
	}
	client_close(c);
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, MQLUA_CLIENT_T);
	if (!c->mosq) {
		lua_pushliteral(L, "mqlua.Client(closed)");
		return 1;
	}
	const char *state = c->connected ? "connected" : "disconnected";
	if (c->host && client_transport_is_unix(c))
		lua_pushfstring(L, "mqlua.Client(\"%s\", unix:%s, %s)", c->client_id, c->host, state);
	else if (c->host)
		lua_pushfstring(L, "mqlua.Client(\"%s\", %s:%d, %s)", c->client_id, c->host, c->port, state);
	else
		lua_pushfstring(L, "mqlua.Client(\"%s\", not connected)", c->client_id);
	return 1;
}

/* ---- fields and callbacks ---- */

static int l_index(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, MQLUA_CLIENT_T);
	/* methods first */
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	lua_pop(L, 1);
	const char *k = lua_tostring(L, 2);
	if (k && c->mosq) {
		if (strcmp(k, "client_id") == 0) { lua_pushstring(L, c->client_id); return 1; }
		if (strcmp(k, "host") == 0) { lua_pushstring(L, c->host); return 1; }
		if (strcmp(k, "port") == 0) { if (c->host) lua_pushinteger(L, c->port); else lua_pushnil(L); return 1; }
		if (strcmp(k, "keepalive") == 0) { lua_pushinteger(L, c->keepalive); return 1; }
		if (strcmp(k, "protocol") == 0) { lua_pushinteger(L, c->protocol); return 1; }
		if (strcmp(k, "transport") == 0) { lua_pushstring(L, c->transport); return 1; }
		if (strcmp(k, "username") == 0) { lua_pushstring(L, c->username); return 1; }
		if (strcmp(k, "clean_session") == 0) { lua_pushboolean(L, c->clean_session); return 1; }
		if (client_attr_get(L, c, k))
			return 1;
	}
	lua_getiuservalue(L, 1, CLIENT_UV_FIELDS);
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int l_newindex(lua_State *L)
{
	struct client *self = luaL_checkudata(L, 1, MQLUA_CLIENT_T);
	const char *k = lua_tostring(L, 2);
	if (k && self->mosq && client_attr_set(L, self, k))
		return 0;
	if (k && strncmp(k, "on_", 3) == 0) {
		bool known = false;
		for (int i = 0; callback_names[i] && !known; i++)
			known = strcmp(k, callback_names[i]) == 0;
		if (!known)
			return luaL_error(L, "unknown callback '%s' (callbacks: on_connect, on_disconnect, on_message, "
			                  "on_publish, on_subscribe, on_unsubscribe, on_log, on_connect_fail, on_pre_connect)", k);
		if (!lua_isnil(L, 3) && !lua_isfunction(L, 3) && !luaL_getmetafield(L, 3, "__call"))
			return luaL_error(L, "%s must be a function or nil, got %s", k, luaL_typename(L, 3));
	}
	lua_getiuservalue(L, 1, CLIENT_UV_FIELDS);
	owner_note_write(L, -1, 2);
	if (k && strncmp(k, "on_", 3) == 0)
		owner_claim(L, 3);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	if (k && strcmp(k, "on_log") == 0) {
		struct client *c = lua_touserdata(L, 1);
		c->has_on_log = !lua_isnil(L, 3);
		if (c->mosq)
			client_update_log(c);
	}
	return 0;
}

/* ---- connecting ---- */

static const char *const connect_names[] = { "host", "port", "keepalive", "bind_address", "bind_port",
	"clean_start", "properties", NULL };

/* Reads connect()'s arguments into c; raises on invalid ones. */
static void connect_args(lua_State *L, struct client *c)
{
	mqlua_named_args(L, 2, connect_names);
	lua_settop(L, 8);
	const char *host = luaL_optstring(L, 2, NULL);
	const struct mqlua_default_broker *d = &mqlua_default_broker;
	int default_port = c->tls ? 8883 : 1883;
	if (!host || !*host) {
		if (!d->host)
			luaL_argerror(L, 2, "host is required: no default broker (give one with --broker URL, "
			              "or start one with mqlua.broker.start())");
		host = d->host;
		default_port = d->port;
		client_use_default_broker(c, d);
	}
	lua_Integer port = luaL_optinteger(L, 3, default_port);
	if (client_transport_is_unix(c))
		port = 0;   /* host is the socket's path: libmosquitto takes port 0 for that */
	else
		luaL_argcheck(L, port > 0 && port <= 65535, 3, "port must be between 1 and 65535");
	lua_Integer keepalive = luaL_optinteger(L, 4, 60);
	/* libmosquitto refuses 1..4 with a bare MOSQ_ERR_INVAL: say so here */
	luaL_argcheck(L, keepalive == 0 || (keepalive >= 5 && keepalive <= 65535), 4,
	              "keepalive must be 0 (off) or between 5 and 65535");
	const char *bind = luaL_optstring(L, 5, "");
	lua_Integer bind_port = luaL_optinteger(L, 6, 0);
	luaL_argcheck(L, bind_port == 0, 6, "bind_port is not supported by libmosquitto (leave it 0)");
	int clean_start = MQLUA_CLEAN_START_FIRST_ONLY;
	if (lua_isboolean(L, 7))
		clean_start = lua_toboolean(L, 7);
	else if (!lua_isnil(L, 7) && !(lua_isinteger(L, 7) && lua_tointeger(L, 7) == MQLUA_CLEAN_START_FIRST_ONLY))
		luaL_argerror(L, 7, "clean_start must be true, false or mqtt.MQTT_CLEAN_START_FIRST_ONLY");
	if (c->protocol != MQTT_PROTOCOL_V5 && clean_start != MQLUA_CLEAN_START_FIRST_ONLY)
		luaL_argerror(L, 7, "clean_start only applies to MQTT v5 (use clean_session of mqtt.Client)");
	mosquitto_property *props = client_check_properties(L, c, 8, CMD_CONNECT, "properties");
	mosquitto_property_free_all(&c->connect_props);
	c->connect_props = props;
	c->clean_start = clean_start;
	client_set_string(&c->host, host);
	c->port = (int)port;
	c->keepalive = (int)keepalive;
	client_set_string(&c->bind_address, *bind ? bind : NULL);
}

static int push_rc(lua_State *L, struct client *c, int mosq_rc)
{
	lua_pushinteger(L, rc_from_mosq(mosq_rc));
	if (mosq_rc == MOSQ_ERR_SUCCESS)
		return 1;
	lua_pushstring(L, c->last_error);
	return 2;
}

static int do_connect(lua_State *L, struct client *c, bool async)
{
	c->connect_requested = true;
	c->connack_seen = false;
	loop_timer_stop(loop_default(), &c->reconnect_timer);
	MQLUA_ENTER(L);
	client_pre_connect(c);
	errno = 0;
	int rc = client_start_connect(c, !async, true);
	if (rc == MOSQ_ERR_SUCCESS) {
		if (mqlua_autoattach || client_transport_needs_loop(c))
			client_attach(c);
		client_sync_io(c);
	} else {
		if (!async)
			c->connect_requested = false;
		else if (mqlua_autoattach)
			client_attach(c);   /* connect_async retries with backoff */
		client_connect_failed(c, rc);
	}
	MQLUA_LEAVE();
	return push_rc(L, c, rc);
}

/* client:connect(host, port=1883, keepalive=60, bind_address="") -> rc[, error] */
static int l_connect(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (c->reused)
		return push_rc(L, c, MOSQ_ERR_SUCCESS);
	connect_args(L, c);
	return do_connect(L, c, false);
}

/* client:connect_async(...): like connect, but a failure is retried with backoff. */
static int l_connect_async(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (c->reused)
		return push_rc(L, c, MOSQ_ERR_SUCCESS);
	connect_args(L, c);
	return do_connect(L, c, true);
}

static int l_reconnect(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (!c->host)
		return luaL_error(L, "reconnect() called before connect()");
	c->connect_requested = true;
	c->connack_seen = false;
	MQLUA_ENTER(L);
	errno = 0;
	int rc = client_start_connect(c, true, false);
	if (rc == MOSQ_ERR_SUCCESS) {
		if (mqlua_autoattach || client_transport_needs_loop(c))
			client_attach(c);   /* disconnect() detached it: attach again, as connect() does */
		client_sync_io(c);
	} else {
		client_connect_failed(c, rc);
	}
	MQLUA_LEAVE();
	return push_rc(L, c, rc);
}

/* The reasoncode argument of disconnect(): a number or a ReasonCode (its value). */
static int check_reasoncode(lua_State *L, int idx)
{
	if (lua_isnil(L, idx))
		return 0;
	int t = lua_type(L, idx);
	if (t == LUA_TUSERDATA || t == LUA_TTABLE) {
		lua_getfield(L, idx, "value");
		lua_replace(L, idx);
	}
	int isint;
	lua_Integer v = lua_tointegerx(L, idx, &isint);
	if (lua_type(L, idx) != LUA_TNUMBER || !isint || v < 0 || v > 255)
		luaL_argerror(L, idx, "reasoncode must be a ReasonCode or a number from 0 to 255");
	return (int)v;
}

/* client:disconnect(reasoncode=0, properties=nil) -> rc */
static int l_disconnect(lua_State *L)
{
	static const char *const names[] = { "reasoncode", "properties", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 3);
	int reason = check_reasoncode(L, 2);
	if (reason != 0 && c->protocol != MQTT_PROTOCOL_V5)
		luaL_argerror(L, 2, "reasoncode only applies to MQTT v5");
	mosquitto_property *props = client_check_properties(L, c, 3, CMD_DISCONNECT, "properties");
	c->connect_requested = false;
	loop_timer_stop(loop_default(), &c->reconnect_timer);
	MQLUA_ENTER(L);
	if (c->store && c->connected) {
		/* what was published just before goes out ahead of the DISCONNECT (unacked rows stay queued) */
		mqlua_store_commit_all();
		client_outbox_dispatch(c);
	}
	stats_client_disconnecting(c);
	int rc = mosquitto_disconnect_v5(c->mosq, reason, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS)
		client_detach(c);   /* nothing to wait for */
	client_sync_io(c);
	MQLUA_LEAVE();
	lua_pushinteger(L, rc_from_mosq(rc));
	return 1;
}

static int l_is_connected(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_pushboolean(L, c->connected);
	return 1;
}

static int l_last_error(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (c->last_error[0])
		lua_pushstring(L, c->last_error);
	else
		lua_pushnil(L);
	return 1;
}

/* ---- running ---- */

/* client:loop(timeout=1.0) -> rc */
static int l_loop(lua_State *L)
{
	struct client *c = client_check(L, 1);
	double timeout = luaL_optnumber(L, 2, 1.0);
	luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
	if (!c->attached && mosquitto_socket(c->mosq) < 0) {
		lua_pushinteger(L, RC_NO_CONN);
		return 1;
	}
	MQLUA_ENTER(L);
	client_run_once(c, timeout);
	MQLUA_LEAVE();
	mqlua_check_interrupted(L);
	lua_pushinteger(L, c->connected || c->attached ? RC_SUCCESS : RC_CONN_LOST);
	return 1;
}

static bool forever_done(void *ud)
{
	struct client *c = ud;
	return !c->mosq || (!c->connect_requested && !c->connected) || loop_stopping(loop_default());
}

/* client:loop_forever() runs the shared loop, reconnecting, until disconnect(). */
static int l_loop_forever(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (!c->connect_requested && !c->connected) {
		lua_pushinteger(L, RC_NO_CONN);
		return 1;
	}
	lua_settop(L, 1);
	client_attach(c);
	MQLUA_ENTER(L);
	mqlua_wait(forever_done, c, -1);
	MQLUA_LEAVE();
	mqlua_check_interrupted(L);
	lua_pushinteger(L, RC_SUCCESS);
	return 1;
}

static int l_loop_start(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (c->attached && !mqlua_autoattach) {
		lua_pushinteger(L, RC_INVAL);
		return 1;
	}
	client_attach(c);
	lua_pushinteger(L, RC_SUCCESS);
	return 1;
}

static int l_loop_stop(lua_State *L)
{
	struct client *c = client_check(L, 1);
	if (!c->attached) {
		lua_pushinteger(L, RC_INVAL);
		return 1;
	}
	c->connect_requested = c->connected && c->connect_requested;
	client_detach(c);
	lua_pushinteger(L, RC_SUCCESS);
	return 1;
}

/* ---- misc settings ---- */

static int l_user_data_set(lua_State *L)
{
	client_check(L, 1);
	lua_settop(L, 2);
	lua_setiuservalue(L, 1, CLIENT_UV_USERDATA);
	return 0;
}

static int l_user_data_get(lua_State *L)
{
	client_check(L, 1);
	lua_getiuservalue(L, 1, CLIENT_UV_USERDATA);
	return 1;
}

/* client:reconnect_delay_set(min_delay=1, max_delay=120) */
static int l_reconnect_delay_set(lua_State *L)
{
	static const char *const names[] = { "min_delay", "max_delay", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	double lo = luaL_optnumber(L, 2, 1), hi = luaL_optnumber(L, 3, 120);
	luaL_argcheck(L, lo > 0, 2, "min_delay must be positive");
	luaL_argcheck(L, hi >= lo, 3, "max_delay must be at least min_delay");
	c->reconnect_min = lo;
	c->reconnect_max = hi;
	return 0;
}

/* client:max_inflight_messages_set(n) */
static int l_max_inflight_messages_set(lua_State *L)
{
	struct client *c = client_check(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_argcheck(L, n >= 0 && n <= 65535, 2, "inflight must be between 0 and 65535");
	int window = n == 0 ? 65535 : (int)n;
	if (window > c->ninflight) {
		struct inflight *grown = realloc(c->inflight, window * sizeof *grown);
		if (!grown)
			return luaL_error(L, "out of memory");
		c->inflight = grown;
		c->max_inflight = window;
	}
	mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, window);
	return 0;
}

void client_open(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "reinitialise", l_reinitialise },
		{ "connect", l_connect },
		{ "connect_async", l_connect_async },
		{ "reconnect", l_reconnect },
		{ "disconnect", l_disconnect },
		{ "is_connected", l_is_connected },
		{ "last_error", l_last_error },
		{ "loop", l_loop },
		{ "loop_forever", l_loop_forever },
		{ "loop_start", l_loop_start },
		{ "loop_stop", l_loop_stop },
		{ "publish", client_publish },
		{ "subscribe", client_subscribe },
		{ "unsubscribe", client_unsubscribe },
		{ "will_set", client_will_set },
		{ "will_clear", client_will_clear },
		{ "username_pw_set", client_username_pw_set },
		{ "tls_set", client_tls_set },
		{ "tls_insecure_set", client_tls_insecure_set },
		{ "user_data_set", l_user_data_set },
		{ "user_data_get", l_user_data_get },
		{ "message_callback_add", client_message_callback_add },
		{ "message_callback_remove", client_message_callback_remove },
		{ "reconnect_delay_set", l_reconnect_delay_set },
		{ "max_inflight_messages_set", l_max_inflight_messages_set },
		{ "max_queued_messages_set", client_max_queued_messages_set },
		{ "queue_depth", client_queue_depth },
		{ "queue_oldest_age", client_queue_oldest_age },
		{ "dead_letters", client_dead_letters },
		{ "retained", client_retained },
		{ "wait_message", client_wait_message },
		{ NULL, NULL }
	};
	static const luaL_Reg meta[] = {
		{ "__newindex", l_newindex },
		{ "__gc", l_gc },
		{ "__close", l_close },
		{ "__tostring", l_tostring },
		{ NULL, NULL }
	};
	if (luaL_newmetatable(L, MQLUA_CLIENT_T)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlib(L, methods);
		luaL_setfuncs(L, client_srv_methods, 0);
		luaL_setfuncs(L, client_hostloop_methods, 0);
		luaL_setfuncs(L, client_attrs_methods, 0);
		client_transport_open(L);
		lua_pushcclosure(L, l_index, 1);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "Client");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
	info_open(L);
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &weak_key) == LUA_TNIL) {
		lua_newtable(L);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "v");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &weak_key);
	}
	lua_pop(L, 1);
}
