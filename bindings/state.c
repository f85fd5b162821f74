/*
 * state.c - mqlua.state, the scripts' persistent key/value table: a proxy
 * whose __index, __newindex and __pairs read and write the state rows of the
 * process's store (store/state.c). A write joins the loop iteration's
 * transaction, so it commits together with the messages published in the
 * same iteration: after a crash, a counter and what was published with it
 * agree.
 *
 * Keys are strings. Values keep their Lua type: strings, integers, floats
 * (written with 17 significant digits, so they come back bit for bit),
 * booleans, and tables as JSON through a private lua-cjson instance
 * (numbers in tables come back as integers when they are whole, as JSON
 * does not tell 2 from 2.0). Assigning nil deletes the key.
 * mqlua.state(scope) is another such table, over keys of its own.
 */
#include "bindings/mqlua.h"
#include "store/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* registry[&cjson_key]: this state's private cjson instance (cjson.new()) */
static const char cjson_key = 'j';

/* The store behind mqlua.state, opened on first use; raises when it cannot be. */
static struct store *state_store(lua_State *L)
{
	char err[512];
	struct store *s = mqlua_store(NULL, STORE_NORMAL, err, sizeof err);
	if (!s)
		luaL_error(L, "mqlua.state: %s", err);
	return s;
}

/* Pushes and returns words for the store's last failure, naming its file. */
static const char *store_why(lua_State *L, struct store *s)
{
	return lua_pushfstring(L, "store %s: %s", store_path(s), sqlite3_errmsg(store_db(s)));
}

static bool is_identifier(const char *s)
{
	if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	for (s++; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* Pushes how errors name key: mqlua.state.x or mqlua.state["a b"]. */
static const char *push_key_name(lua_State *L, const char *key)
{
	if (is_identifier(key))
		return lua_pushfstring(L, "mqlua.state.%s", key);
	return lua_pushfstring(L, "mqlua.state[\"%s\"]", key);
}

/* The key at idx: a string without NUL; raises otherwise. */
static const char *check_key(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "mqlua.state: keys are strings, not %s", luaL_typename(L, idx));
	size_t len;
	const char *key = lua_tolstring(L, idx, &len);
	if (strlen(key) != len)
		luaL_error(L, "mqlua.state: a key must not contain a NUL character");
	return key;
}

/* Pushes the private cjson instance, loading lua-cjson on first use. */
static void push_cjson(lua_State *L, const char *key)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cjson_key) != LUA_TNIL)
		return;
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
		push_key_name(L, key);
		luaL_error(L, "%s: tables are stored as JSON, which needs lua-cjson: %s", lua_tostring(L, -1),
		           lua_isstring(L, -2) ? lua_tostring(L, -2) : "require \"cjson\" gave no module");
	}
	/* a private instance: a script's cjson settings do not change what we store */
	if (lua_getfield(L, -1, "new") == LUA_TFUNCTION && lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1))
		lua_remove(L, -2);
	else
		lua_pop(L, 1);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &cjson_key);
}

/* Calls cjson's fn ("encode" or "decode") on the value at top, replacing
 * it by the result; raises naming key, with `what` and cjson's reason. */
static void call_cjson(lua_State *L, const char *fn, const char *key, const char *what)
{
	push_cjson(L, key);
	lua_getfield(L, -1, fn);
	lua_remove(L, -2);
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		const char *why = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)";
		push_key_name(L, key);
		luaL_error(L, "%s: %s: %s", lua_tostring(L, -1), what, why);
	}
}

/* Turns whole floats in the table at top (and its subtables) into integers. */
static void integers_in(lua_State *L, int depth)
{
	luaL_checkstack(L, 4, "mqlua.state: table too deep");
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		int whole = 0;
		lua_Integer i = 0;
		if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1))
			i = lua_tointegerx(L, -1, &whole);    /* only floats with an exact integer value */
		if (whole) {
			lua_pop(L, 1);
			lua_pushvalue(L, -1);
			lua_pushinteger(L, i);
			lua_rawset(L, -4);      /* an existing key: allowed while traversing */
		} else {
			if (lua_istable(L, -1) && depth < 1000)
				integers_in(L, depth + 1);
			lua_pop(L, 1);
		}
	}
}

/* Pushes the Lua value of v, stored under key. */
static void push_value(lua_State *L, const char *key, const struct state_value *v)
{
	char num[64];
	char *end;
	switch (v->type) {
	case 's':
		lua_pushlstring(L, v->data, v->len);
		return;
	case 'b':
		lua_pushboolean(L, v->len == 4 && memcmp(v->data, "true", 4) == 0);
		return;
	case 'i':
	case 'n':
		if (v->len == 0 || v->len >= sizeof num)
			break;
		memcpy(num, v->data, v->len);
		num[v->len] = '\0';
		errno = 0;
		if (v->type == 'i') {
			long long i = strtoll(num, &end, 10);
			if (*end || errno)
				break;
			lua_pushinteger(L, (lua_Integer)i);
		} else {
			double d = strtod(num, &end);
			if (*end)
				break;
			lua_pushnumber(L, (lua_Number)d);
		}
		return;
	case 'j':
		lua_pushlstring(L, v->data, v->len);
		call_cjson(L, "decode", key, "the stored JSON is damaged");
		if (lua_istable(L, -1))
			integers_in(L, 0);
		return;
	}
	push_key_name(L, key);
	luaL_error(L, "%s: the stored value (type '%c') is damaged", lua_tostring(L, -1), v->type);
}

/* __index(proxy, key) */
static int state_index(lua_State *L)
{
	const char *scope = lua_tostring(L, lua_upvalueindex(1));
	const char *key = check_key(L, 2);
	struct store *s = state_store(L);
	struct state_value v;
	int found = state_get(s, scope, key, &v);
	if (found < 0) {
		const char *why = store_why(L, s);
		return luaL_error(L, "%s: cannot read the store: %s", push_key_name(L, key), why);
	}
	if (found == 0) {
		lua_pushnil(L);
		return 1;
	}
	push_value(L, key, &v);
	return 1;
}

/* __newindex(proxy, key, value) */
static int state_newindex(lua_State *L)
{
	const char *scope = lua_tostring(L, lua_upvalueindex(1));
	const char *key = check_key(L, 2);
	char num[64];
	struct state_value v = { 0 };
	lua_settop(L, 3);
	switch (lua_type(L, 3)) {
	case LUA_TNIL:
		break;
	case LUA_TSTRING:
		v.type = 's';
		v.data = lua_tolstring(L, 3, &v.len);
		break;
	case LUA_TBOOLEAN:
		v.type = 'b';
		v.data = lua_toboolean(L, 3) ? "true" : "false";
		v.len = strlen(v.data);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, 3)) {
			v.type = 'i';
			snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, 3));
		} else {
			v.type = 'n';
			snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, 3));
		}
		v.data = num;
		v.len = strlen(num);
		break;
	case LUA_TTABLE:
		lua_pushvalue(L, 3);
		call_cjson(L, "encode", key, "cannot store the table as JSON");
		if (!lua_isstring(L, -1)) {
			push_key_name(L, key);
			return luaL_error(L, "%s: cjson.encode did not return a string", lua_tostring(L, -1));
		}
		v.type = 'j';
		v.data = lua_tolstring(L, -1, &v.len);
		break;
	default: {
		const char *type = luaL_typename(L, 3);
		if (luaL_getmetafield(L, 3, "__name") == LUA_TSTRING)
			type = lua_tostring(L, -1);       /* "FILE*", "mqlua.Client"... */
		return luaL_error(L, "%s: cannot store a %s (strings, numbers, booleans and tables only)",
		                  push_key_name(L, key), type);
	}
	}
	struct store *s = state_store(L);
	if (state_set(s, scope, key, v.type ? &v : NULL) != 0) {
		const char *why = store_why(L, s);
		return luaL_error(L, "%s: cannot write to the store: %s", push_key_name(L, key), why);
	}
	return 0;
}

struct snapshot {
	lua_State *L;
	lua_Integer n;     /* keys at -2, type letter .. data at -1 */
};

static bool snapshot_one(const char *key, const struct state_value *v, void *ud)
{
	struct snapshot *k = ud;
	lua_State *L = k->L;
	k->n++;
	lua_pushstring(L, key);
	lua_rawseti(L, -3, k->n);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, v->type);
	luaL_addlstring(&b, v->data, v->len);
	luaL_pushresult(&b);
	lua_rawseti(L, -2, k->n);
	return true;
}

/* The iterator __pairs returns: upvalues keys, values, position. */
static int state_next(lua_State *L)
{
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(3)) + 1;
	if (lua_rawgeti(L, lua_upvalueindex(1), i) == LUA_TNIL)
		return 1;
	lua_pushinteger(L, i);
	lua_replace(L, lua_upvalueindex(3));
	lua_pushvalue(L, -1);
	lua_rawget(L, lua_upvalueindex(2));
	return 2;
}

/* __pairs(proxy): iterates over a snapshot taken now, in key order; the
 * table may be changed meanwhile. */
static int state_pairs(lua_State *L)
{
	const char *scope = lua_tostring(L, lua_upvalueindex(1));
	struct store *s = state_store(L);
	lua_newtable(L);            /* keys */
	lua_newtable(L);            /* raw values, then decoded values by key */
	struct snapshot k = { L, 0 };
	if (state_each(s, scope, snapshot_one, &k) < 0)
		return luaL_error(L, "mqlua.state: cannot read the store: %s", store_why(L, s));
	int keys = lua_gettop(L) - 1, raw = keys + 1;
	lua_newtable(L);
	int values = lua_gettop(L);
	for (lua_Integer i = 1; i <= k.n; i++) {
		lua_rawgeti(L, keys, i);
		const char *key = lua_tostring(L, -1);
		size_t len;
		lua_rawgeti(L, raw, i);
		const char *r = lua_tolstring(L, -1, &len);
		struct state_value v = { r[0], r + 1, len - 1 };
		push_value(L, key, &v);
		lua_remove(L, -2);
		lua_rawset(L, values);
	}
	lua_pushvalue(L, keys);
	lua_pushvalue(L, values);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, state_next, 3);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int state_tostring(lua_State *L)
{
	const char *scope = lua_tostring(L, lua_upvalueindex(1));
	if (*scope)
		lua_pushfstring(L, "mqlua.state (scope \"%s\")", scope);
	else
		lua_pushliteral(L, "mqlua.state");
	return 1;
}

static void push_state(lua_State *L, const char *scope);

/* __call(proxy, scope): mqlua.state("name") is a table of the same kind over
 * keys of its own, so that a library (mqlua.rules) keeps its memory apart
 * from the script's keys. */
static int state_call(lua_State *L)
{
	size_t len;
	const char *scope = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
	if (!scope)
		return luaL_error(L, "mqlua.state(scope): the scope must be a string, not %s", luaL_typename(L, 2));
	if (len == 0 || strlen(scope) != len)
		return luaL_error(L, "mqlua.state(scope): the scope must be a non-empty string without NUL");
	push_state(L, scope);
	return 1;
}

/* Pushes a state proxy over scope. */
static void push_state(lua_State *L, const char *scope)
{
	static const luaL_Reg meta[] = {
		{ "__index", state_index },
		{ "__newindex", state_newindex },
		{ "__pairs", state_pairs },
		{ "__tostring", state_tostring },
		{ "__call", state_call },
		{ NULL, NULL }
	};
	lua_newtable(L);
	lua_createtable(L, 0, 7);
	lua_pushstring(L, scope);
	luaL_setfuncs(L, meta, 1);
	lua_pushliteral(L, "mqlua.state");
	lua_setfield(L, -2, "__name");
	lua_pushliteral(L, "mqlua.state");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}

void state_open(lua_State *L)
{
	push_state(L, "");
	lua_setfield(L, -2, "state");
}
