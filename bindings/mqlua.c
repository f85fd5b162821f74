/*
 * mqlua.c - luaopen_mqlua: the module table (Client, paho's constants and
 * helper functions, the loop functions for scripts), and the plumbing every
 * binding file shares: the protected-call path, keyword-table arguments,
 * the default broker.
 */
#include "bindings/mqlua.h"
#include "bindings/properties.h"
#include "bindings/rc.h"
#include "bindings/stats.h"
#include "runtime/log.h"
#include "runtime/loop.h"

#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>

unsigned long mqlua_callback_errors;
bool mqlua_plain_handlers;
bool mqlua_autoattach;
lua_State *mqlua_running_L;
volatile int mqlua_interrupted;

void mqlua_check_interrupted(lua_State *L)
{
	if (mqlua_interrupted)
		luaL_error(L, "interrupted");
}
struct mqlua_default_broker mqlua_default_broker;

int mqlua_traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int mqlua_pcall(lua_State *L, int nargs, int nresults, const char *what)
{
	if (nresults == 0 && !mqlua_plain_handlers)
		return mqlua_pcall_budget(L, nargs, what, -1);
	stats_client = NULL;    /* set for a task that is not made here */
	task_detail = NULL;
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, mqlua_traceback);
	lua_insert(L, base);
	int status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	if (status == LUA_OK)
		return status;
	if (status == LUA_ERRMEM) {
		log_error("out of memory in %s", what);
		abort();
	}
	if (mqlua_interrupted)
		log_debug("%s stopped: %s", what, lua_tostring(L, -1));
	else {
		mqlua_callback_errors++;
		log_error("error in %s: %s", what, lua_tostring(L, -1));
	}
	lua_pop(L, 1);
	return status;
}

int mqlua_pcall_budget(lua_State *L, int nargs, const char *what, int budget)
{
	if (mqlua_plain_handlers)
		return mqlua_pcall(L, nargs, 0, what);
	int status = task_call_budget(L, nargs, what, budget < 0 ? mqlua_handler_budget : budget);
	return status == LUA_YIELD ? LUA_OK : status;
}

void mqlua_push_weak_table(lua_State *L, const void *key)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
		return;
	lua_pop(L, 1);
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int mqlua_push_subtable(lua_State *L, int t, int k, bool create)
{
	t = lua_absindex(L, t);
	k = lua_absindex(L, k);
	lua_pushvalue(L, k);
	if (lua_rawget(L, t) == LUA_TNIL && create) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, k);
		lua_pushvalue(L, -2);
		lua_rawset(L, t);
	}
	return lua_type(L, -1);
}

void mqlua_named_args(lua_State *L, int first, const char *const names[])
{
	if (lua_gettop(L) != first || !lua_istable(L, first) || lua_getmetatable(L, first))
		return;  /* not a plain table, or not alone: positional form */
	bool named = false;
	for (int i = 0; names[i] && !named; i++) {
		named = lua_getfield(L, first, names[i]) != LUA_TNIL;
		lua_pop(L, 1);
	}
	if (!named)
		return;
	/* a key that is not a parameter is a typo the user wants to hear about */
	lua_pushnil(L);
	while (lua_next(L, first)) {
		lua_pop(L, 1);
		bool known = false;
		if (lua_type(L, -1) == LUA_TSTRING)
			for (int i = 0; names[i] && !known; i++)
				known = strcmp(lua_tostring(L, -1), names[i]) == 0;
		if (!known)
			luaL_error(L, "unknown argument '%s'", luaL_tolstring(L, -1, NULL));
	}
	for (int i = 0; names[i]; i++)
		lua_getfield(L, first, names[i]);
	lua_remove(L, first);
}

bool mqlua_optboolean(lua_State *L, int arg, bool def, const char *name)
{
	if (lua_isnoneornil(L, arg))
		return def;
	if (!lua_isboolean(L, arg))
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a boolean, got %s", name, luaL_typename(L, arg)));
	return lua_toboolean(L, arg);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void mqlua_set_default_broker(const char *host, int port, const char *username,
                              const char *password, bool tls)
{
	struct mqlua_default_broker *d = &mqlua_default_broker;
	free(d->host);
	free(d->username);
	if (d->password)
		memset(d->password, 0, strlen(d->password));
	free(d->password);
	d->host = dup_or_null(host);
	d->port = port;
	d->username = dup_or_null(username);
	d->password = dup_or_null(password);
	d->tls = tls;
}

bool mqlua_wait(bool (*done)(void *ud), void *ud, double timeout)
{
	struct loop *loop = loop_default();
	double deadline = timeout >= 0 ? loop_now() + timeout : -1;
	bool ran = false;
	while (!done(ud)) {
		if (mqlua_interrupted)
			return false;
		double left = deadline < 0 ? 1.0 : deadline - loop_now();
		if (left <= 0 && ran)
			return false;
		/* at least one turn, even for a zero timeout: sleep(0) commits and sends */
		loop_run_once(loop, left <= 0 ? 0 : left > 1.0 ? 1.0 : left);
		ran = true;
	}
	return true;
}

/* ---- module functions ---- */

static bool never(void *ud) { (void)ud; return false; }

static int sleep_done(lua_State *L, int status, lua_KContext ctx)
{
	(void)status; (void)ctx;
	mqlua_check_interrupted(L);
	return 0;
}

/* mqlua.sleep(seconds): in a task, lets the loop run other work meanwhile;
 * outside one, runs the shared loop for that long. */
static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0, 1, "seconds must not be negative");
	if (task_can_wait(L))
		return task_wait(L, NULL, NULL, s, sleep_done, 0);
	MQLUA_ENTER(L);
	mqlua_wait(never, NULL, s);
	MQLUA_LEAVE();
	mqlua_check_interrupted(L);
	return 0;
}

struct wait_pred { lua_State *L; int idx; bool error; };

static bool pred_true(void *ud)
{
	struct wait_pred *w = ud;
	lua_pushcfunction(w->L, mqlua_traceback);
	lua_pushvalue(w->L, w->idx);
	int status = lua_pcall(w->L, 0, 1, -2);
	lua_remove(w->L, -2);
	if (status != LUA_OK) {
		w->error = true;   /* the error (with its traceback) stays on the stack */
		return true;
	}
	bool ok = lua_toboolean(w->L, -1);
	lua_pop(w->L, 1);
	return ok;
}

static bool next_pass(void *ud)
{
	(void)ud;
	return true;
}

/* In a task: calls pred (index 1) once per loop turn, until it is true or
 * the deadline (index 3, a number, negative: none) passed. */
static int wait_until_step(lua_State *L, int status, lua_KContext ctx)
{
	(void)status; (void)ctx;
	mqlua_check_interrupted(L);
	lua_pushvalue(L, 1);
	lua_call(L, 0, 1);
	if (lua_toboolean(L, -1)) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pop(L, 1);
	double deadline = lua_tonumber(L, 3);
	double left = deadline < 0 ? 1.0 : deadline - loop_now();
	if (left <= 0) {
		lua_pushnil(L);
		lua_pushliteral(L, "timeout");
		return 2;
	}
	/* the next turn, or within a second for predicates that only time makes true */
	return task_wait(L, next_pass, NULL, left > 1.0 ? 1.0 : left, wait_until_step, 0);
}

/* mqlua.wait_until(pred[, timeout]) -> true | nil, "timeout" */
static int l_wait_until(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	double timeout = luaL_optnumber(L, 2, -1);
	if (task_can_wait(L)) {
		lua_settop(L, 2);
		lua_pushnumber(L, timeout < 0 ? -1 : loop_now() + timeout);
		return wait_until_step(L, LUA_OK, 0);
	}
	struct wait_pred w = { L, 1, false };
	MQLUA_ENTER(L);
	bool ok = mqlua_wait(pred_true, &w, timeout);
	MQLUA_LEAVE();
	mqlua_check_interrupted(L);
	if (w.error)
		return lua_error(L);   /* the predicate's own error, traceback included */
	if (ok) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushliteral(L, "timeout");
	return 2;
}

/* mqlua.run(): runs the shared loop while anything keeps it alive. */
static int l_run(lua_State *L)
{
	MQLUA_ENTER(L);
	loop_run(loop_default());
	MQLUA_LEAVE();
	mqlua_check_interrupted(L);
	return 0;
}

/* mqlua.spawn(fn, ...): runs fn(...) as a new task at once; it goes on
 * running on the loop when it waits. Its errors are logged, not raised. */
static int l_spawn(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	owner_claim(L, 1);
	task_call(L, lua_gettop(L) - 1, "mqlua.spawn task");
	return 0;
}

static int l_time(lua_State *L)
{
	lua_pushnumber(L, loop_now());
	return 1;
}

static int l_connack_string(lua_State *L)
{
	lua_pushstring(L, rc_connack_string((int)luaL_checkinteger(L, 1)));
	return 1;
}

static int l_error_string(lua_State *L)
{
	lua_pushstring(L, rc_error_string((int)luaL_checkinteger(L, 1)));
	return 1;
}

static const struct { const char *name; int value; } constants[] = {
	{ "MQTTv31", MQTT_PROTOCOL_V31 }, { "MQTTv311", MQTT_PROTOCOL_V311 }, { "MQTTv5", MQTT_PROTOCOL_V5 },
	{ "MQTT_ERR_AGAIN", -1 }, { "MQTT_ERR_SUCCESS", 0 }, { "MQTT_ERR_NOMEM", 1 },
	{ "MQTT_ERR_PROTOCOL", 2 }, { "MQTT_ERR_INVAL", 3 }, { "MQTT_ERR_NO_CONN", 4 },
	{ "MQTT_ERR_CONN_REFUSED", 5 }, { "MQTT_ERR_NOT_FOUND", 6 }, { "MQTT_ERR_CONN_LOST", 7 },
	{ "MQTT_ERR_TLS", 8 }, { "MQTT_ERR_PAYLOAD_SIZE", 9 }, { "MQTT_ERR_NOT_SUPPORTED", 10 },
	{ "MQTT_ERR_AUTH", 11 }, { "MQTT_ERR_ACL_DENIED", 12 }, { "MQTT_ERR_UNKNOWN", 13 },
	{ "MQTT_ERR_ERRNO", 14 }, { "MQTT_ERR_QUEUE_SIZE", 15 }, { "MQTT_ERR_KEEPALIVE", 16 },
	{ "CONNACK_ACCEPTED", 0 }, { "CONNACK_REFUSED_PROTOCOL_VERSION", 1 },
	{ "CONNACK_REFUSED_IDENTIFIER_REJECTED", 2 }, { "CONNACK_REFUSED_SERVER_UNAVAILABLE", 3 },
	{ "CONNACK_REFUSED_BAD_USERNAME_PASSWORD", 4 }, { "CONNACK_REFUSED_NOT_AUTHORIZED", 5 },
	{ "MQTT_LOG_INFO", MOSQ_LOG_INFO }, { "MQTT_LOG_NOTICE", MOSQ_LOG_NOTICE },
	{ "MQTT_LOG_WARNING", MOSQ_LOG_WARNING }, { "MQTT_LOG_ERR", MOSQ_LOG_ERR },
	{ "MQTT_LOG_DEBUG", MOSQ_LOG_DEBUG },
	{ "MQTT_CLEAN_START_FIRST_ONLY", 3 },
	{ "CERT_NONE", 0 }, { "CERT_OPTIONAL", 1 }, { "CERT_REQUIRED", 2 },
	{ "SOCKS4", 1 }, { "SOCKS5", 2 }, { "HTTP", 3 },   /* proxy_set's proxy_type, as PySocks numbers them */
	{ NULL, 0 }
};

/* __index of the module table: mqlua.publish and mqlua.subscribe are the
 * pure-Lua modules "mqlua.publish" and "mqlua.subscribe", required on first
 * use (so a script that never touches them pays nothing). */
static int l_module_index(lua_State *L)
{
	if (lua_type(L, 2) != LUA_TSTRING)
		return 0;
	const char *k = lua_tostring(L, 2);
	if (strcmp(k, "publish") != 0 && strcmp(k, "subscribe") != 0)
		return 0;
	lua_getglobal(L, "require");
	lua_pushfstring(L, "mqlua.%s", k);
	lua_call(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

static const luaL_Reg module_fns[] = {
	{ "Client", client_new },
	{ "connack_string", l_connack_string },
	{ "error_string", l_error_string },
	{ "sleep", l_sleep },
	{ "wait_until", l_wait_until },
	{ "run", l_run },
	{ "spawn", l_spawn },
	{ "time", l_time },
	{ "stats", stats_l_stats },
	{ NULL, NULL }
};

int luaopen_mqlua(lua_State *L)
{
	static bool lib_init;
	if (!lib_init) {
		mosquitto_lib_init();
		lib_init = true;
	}
	task_open(L);
	stats_open();
	/* for tests/bench/run only: handlers called with lua_pcall, so they cannot wait */
	const char *plain = getenv("MQLUA_PLAIN_HANDLERS");
	mqlua_plain_handlers = plain && strcmp(plain, "1") == 0;
	client_open(L);
	luaL_newlib(L, module_fns);
	int mod = lua_gettop(L);
	message_open(L);
	store_bindings_open(L);
	timer_open(L);
	/* mqlua.json: a private lua-cjson instance (Debian's lua-cjson), when installed */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson");
	if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_getfield(L, -1, "new") == LUA_TFUNCTION &&
	    lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1))
		lua_setfield(L, mod, "json");
	lua_settop(L, mod);
	topic_open(L);
	reasoncode_open(L);
	client_sub_open(L);
	properties_open(L);
	for (int i = 0; constants[i].name; i++) {
		lua_pushinteger(L, constants[i].value);
		lua_setfield(L, -2, constants[i].name);
	}
	lua_pushliteral(L, MQLUA_VERSION);
	lua_setfield(L, -2, "VERSION");
	broker_open(L);
	lua_setfield(L, -2, "broker");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_module_index);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	return 1;
}
