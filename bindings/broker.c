/*
 * broker.c - the Broker type: mqlua.broker.start{...} launches a private
 * mosquitto (runtime/broker.c) and, unless told otherwise, makes it the
 * default broker for client:connect() without a host.
 */
#include "bindings/mqlua.h"
#include "runtime/broker.h"

#include <stdlib.h>
#include <string.h>

static struct broker *check_broker(lua_State *L)
{
	return luaL_checkudata(L, 1, MQLUA_BROKER_T);
}

static void forget_default(struct broker *b)
{
	struct mqlua_default_broker *d = &mqlua_default_broker;
	if (d->host && strcmp(d->host, b->host) == 0 && d->port == b->port)
		mqlua_set_default_broker(NULL, 0, NULL, NULL, false);
}

/* mqlua.broker.start{port=0, config="", allow_anonymous=true, default=true, log=false, timeout=10} */
static int l_start(lua_State *L)
{
	struct broker_opts o = { .allow_anonymous = true };
	bool make_default = true;
	if (!lua_isnoneornil(L, 1)) {
		luaL_checktype(L, 1, LUA_TTABLE);
		lua_getfield(L, 1, "port");
		o.port = (int)luaL_optinteger(L, -1, 0);
		lua_getfield(L, 1, "config");
		o.config = luaL_optstring(L, -1, NULL);
		lua_getfield(L, 1, "allow_anonymous");
		o.allow_anonymous = mqlua_optboolean(L, -1, true, "allow_anonymous");
		lua_getfield(L, 1, "default");
		make_default = mqlua_optboolean(L, -1, true, "default");
		lua_getfield(L, 1, "log");
		o.show_log = mqlua_optboolean(L, -1, false, "log");
		lua_getfield(L, 1, "timeout");
		o.timeout = luaL_optnumber(L, -1, 10);
	}
	struct broker *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, MQLUA_BROKER_T);
	char err[1024];
	if (broker_start(b, &o, err, sizeof err) != 0)
		return luaL_error(L, "%s", err);
	if (make_default)
		mqlua_set_default_broker(b->host, b->port, NULL, NULL, false);
	return 1;
}

static int l_stop(lua_State *L)
{
	struct broker *b = check_broker(L);
	if (b->pid > 0)
		forget_default(b);
	broker_stop(b);
	return 0;
}

static int l_index(lua_State *L)
{
	struct broker *b = check_broker(L);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "host") == 0)
		lua_pushstring(L, b->host);
	else if (strcmp(k, "port") == 0)
		lua_pushinteger(L, b->port);
	else if (strcmp(k, "pid") == 0)
		lua_pushinteger(L, b->pid);
	else if (strcmp(k, "url") == 0)
		lua_pushfstring(L, "mqtt://%s:%d", b->host, b->port);
	else if (strcmp(k, "running") == 0)
		lua_pushboolean(L, b->pid > 0);
	else if (strcmp(k, "stop") == 0)
		lua_pushcfunction(L, l_stop);
	else
		return luaL_error(L, "Broker has no field '%s' (fields: host, port, url, pid, running, stop)", k);
	return 1;
}

static int l_tostring(lua_State *L)
{
	struct broker *b = check_broker(L);
	if (b->pid > 0)
		lua_pushfstring(L, "mqlua.Broker(mqtt://%s:%d, pid %d)", b->host, b->port, (int)b->pid);
	else
		lua_pushliteral(L, "mqlua.Broker(stopped)");
	return 1;
}

static int l_free_port(lua_State *L)
{
	int port = broker_free_port();
	if (port < 0)
		return luaL_error(L, "no free port on 127.0.0.1");
	lua_pushinteger(L, port);
	return 1;
}

void broker_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", l_index },
		{ "__gc", l_stop },
		{ "__close", l_stop },
		{ "__tostring", l_tostring },
		{ NULL, NULL }
	};
	static const luaL_Reg fns[] = {
		{ "start", l_start },
		{ "free_port", l_free_port },
		{ NULL, NULL }
	};
	if (luaL_newmetatable(L, MQLUA_BROKER_T)) {
		luaL_setfuncs(L, meta, 0);
		lua_pushliteral(L, "Broker");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
}
