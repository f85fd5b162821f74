/*
 * client_sub.c - the subscription methods of Client: subscribe() in all of
 * paho's forms (split into one SUBSCRIBE per qos, since libmosquitto sends
 * one qos per packet, and reported to the script as one mid), unsubscribe(),
 * and the per-filter message callbacks. What the script subscribed to is
 * remembered for resubscription after a reconnect without a session.
 */
#include "bindings/client.h"
#include "bindings/rc.h"

#include <string.h>

static void check_filter(lua_State *L, int arg, const char *filter, size_t len)
{
	const char *why = topic_check_filter(filter, len);
	if (why)
		luaL_argerror(L, arg, lua_pushfstring(L, "topic filter '%s' %s", filter, why));
}

#define MAX_FILTERS 4096

/* The qos at stack index idx, taken from subscribe()'s table argument (element
 * i of a list, or 0 for a single {topic, qos}): an error blames that argument,
 * not a stack slot. nil gives 0. */
static int check_table_qos(lua_State *L, int idx, int i)
{
	int isnum;
	lua_Integer q = lua_tointegerx(L, idx, &isnum);
	isnum = isnum && lua_type(L, idx) == LUA_TNUMBER;
	if (lua_isnil(L, idx) || (isnum && q >= 0 && q <= 2))
		return isnum ? (int)q : 0;
	const char *got = luaL_tolstring(L, idx, NULL);
	if (i > 0)
		return luaL_argerror(L, 2, lua_pushfstring(L, "element %d: qos must be 0, 1 or 2, got %s", i, got));
	return luaL_argerror(L, 2, lua_pushfstring(L, "qos must be 0, 1 or 2, got %s", got));
}

/* Collects subscribe()'s filters into filters[]/qos[] (strings stay on the stack). */
static int collect_subscriptions(lua_State *L, const char **filters, int *qos)
{
	int n = 0;
	if (lua_type(L, 2) == LUA_TSTRING) {
		size_t len;
		filters[0] = lua_tolstring(L, 2, &len);
		check_filter(L, 2, filters[0], len);
		qos[0] = client_check_qos(L, 3, 0);
		return 1;
	}
	if (!lua_istable(L, 2))
		luaL_argerror(L, 2, lua_pushfstring(L, "topic must be a string or a table, got %s", luaL_typename(L, 2)));
	if (lua_rawgeti(L, 2, 1) == LUA_TSTRING) {
		/* {"topic", qos} */
		lua_pop(L, 1);
		luaL_argcheck(L, lua_isnoneornil(L, 3), 3, "qos must not be given with a {topic, qos} table");
		size_t len;
		lua_rawgeti(L, 2, 1);
		filters[0] = lua_tolstring(L, -1, &len);
		check_filter(L, 2, filters[0], len);
		lua_rawgeti(L, 2, 2);
		qos[0] = check_table_qos(L, lua_gettop(L), 0);
		return 1;
	}
	lua_pop(L, 1);
	luaL_argcheck(L, lua_isnoneornil(L, 3), 3, "qos must not be given with a list of {topic, qos}");
	int count = (int)lua_rawlen(L, 2);
	luaL_argcheck(L, count > 0, 2, "the list of subscriptions is empty");
	luaL_argcheck(L, count <= MAX_FILTERS, 2, "too many subscriptions in one call");
	luaL_checkstack(L, 3 * count + LUA_MINSTACK, "too many subscriptions in one call");   /* 3 slots each, kept */
	for (int i = 1; i <= count; i++) {
		if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
			luaL_argerror(L, 2, lua_pushfstring(L, "element %d must be a {topic, qos} table", i));
		int el = lua_gettop(L);
		size_t len;
		if (lua_rawgeti(L, el, 1) != LUA_TSTRING)
			luaL_argerror(L, 2, lua_pushfstring(L, "element %d: topic must be a string", i));
		filters[n] = lua_tolstring(L, -1, &len);
		check_filter(L, 2, filters[n], len);
		lua_rawgeti(L, el, 2);
		qos[n] = check_table_qos(L, lua_gettop(L), i);
		n++;
	}
	return n;
}

/* Remembers filter->qos (for resubscription) and marks it touched in this on_connect. */
static void remember_subscription(lua_State *L, struct client *c, const char *filter, int qos)
{
	lua_getiuservalue(L, 1, CLIENT_UV_SUBS);
	lua_pushinteger(L, qos);
	lua_setfield(L, -2, filter);
	lua_pop(L, 1);
	if (c->in_on_connect) {
		lua_getiuservalue(L, 1, CLIENT_UV_TOUCHED);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, filter);
		lua_pop(L, 1);
	}
}

/* client:subscribe(topic, qos=0) with topic a string, {topic, qos} or a list of those -> rc, mid */
int client_subscribe(lua_State *L)
{
	static const char *const names[] = { "topic", "qos", "options", "properties", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 5);
	static const char *filters[MAX_FILTERS];
	static int qos[MAX_FILTERS];
	int n = collect_subscriptions(L, filters, qos);
	int per_qos[3] = { 0, 0, 0 };
	for (int i = 0; i < n; i++)   /* before anything is sent: raise without a half-done subscribe */
		if (++per_qos[qos[i]] > 64)
			return luaL_argerror(L, 2, "at most 64 filters with the same qos in one subscribe()");
	if (!c->connected) {
		lua_pushinteger(L, RC_NO_CONN);
		lua_pushnil(L);
		return 2;
	}
	/* libmosquitto sends one qos per SUBSCRIBE: split by qos, one mid to the script */
	int first_mid = 0, rc = MOSQ_ERR_SUCCESS, groups = 0;
	lua_createtable(L, 0, 3);   /* the group, when split */
	int group = lua_gettop(L);
	MQLUA_ENTER(L);
	for (int q = 0; q <= 2 && rc == MOSQ_ERR_SUCCESS; q++) {
		const char *part[MAX_FILTERS > 64 ? 64 : MAX_FILTERS];
		int positions[64];
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (qos[i] != q)
				continue;
			if (k == 64) {
				rc = MOSQ_ERR_INVAL;
				break;
			}
			positions[k] = i + 1;
			part[k++] = filters[i];
		}
		if (k == 0 || rc != MOSQ_ERR_SUCCESS)
			continue;
		int mid = 0;
		rc = k == 1 ? mosquitto_subscribe(c->mosq, &mid, part[0], q)
		            : mosquitto_subscribe_multiple(c->mosq, &mid, k, (char *const *const)part, q, 0, NULL);
		if (rc != MOSQ_ERR_SUCCESS)
			break;
		if (!first_mid)
			first_mid = mid;
		groups++;
		/* record positions so on_subscribe can put granted qos back in order */
		lua_getiuservalue(L, 1, CLIENT_UV_SUBGROUPS);
		lua_createtable(L, k, 0);
		for (int i = 0; i < k; i++) {
			lua_pushinteger(L, positions[i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_pushvalue(L, group);
		lua_setfield(L, -2, "group");
		lua_rawseti(L, -2, mid);
		lua_pop(L, 1);
	}
	client_sync_io(c);
	MQLUA_LEAVE();
	if (rc == MOSQ_ERR_INVAL)
		return luaL_argerror(L, 2, "at most 64 filters with the same qos in one subscribe()");
	lua_pushinteger(L, first_mid);
	lua_setfield(L, group, "mid");
	lua_pushinteger(L, groups);
	lua_setfield(L, group, "pending");
	lua_pushinteger(L, n);
	lua_setfield(L, group, "n");
	if (rc == MOSQ_ERR_SUCCESS)
		for (int i = 0; i < n; i++)
			remember_subscription(L, c, filters[i], qos[i]);
	lua_pushinteger(L, rc_from_mosq(rc));
	if (rc == MOSQ_ERR_SUCCESS)
		lua_pushinteger(L, first_mid);
	else
		lua_pushnil(L);
	return 2;
}

/* client:unsubscribe(topic or {topics}) -> rc, mid */
int client_unsubscribe(lua_State *L)
{
	static const char *const names[] = { "topic", "properties", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 3);
	const char *filters[64];
	int n = 0;
	if (lua_type(L, 2) == LUA_TSTRING) {
		size_t len;
		filters[n++] = lua_tolstring(L, 2, &len);
		check_filter(L, 2, filters[0], len);
	} else if (lua_istable(L, 2)) {
		int count = (int)lua_rawlen(L, 2);
		luaL_argcheck(L, count > 0 && count <= 64, 2, "give between 1 and 64 topics");
		luaL_checkstack(L, count + LUA_MINSTACK, "too many topics");   /* each string stays on the stack */
		for (int i = 1; i <= count; i++) {
			size_t len;
			if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
				luaL_argerror(L, 2, lua_pushfstring(L, "element %d must be a string", i));
			filters[n] = lua_tolstring(L, -1, &len);
			check_filter(L, 2, filters[n++], len);
		}
	} else {
		return luaL_argerror(L, 2, lua_pushfstring(L, "topic must be a string or a list of strings, got %s", luaL_typename(L, 2)));
	}
	lua_getiuservalue(L, 1, CLIENT_UV_SUBS);
	for (int i = 0; i < n; i++) {
		lua_pushnil(L);
		lua_setfield(L, -2, filters[i]);
	}
	lua_pop(L, 1);
	if (!c->connected) {
		lua_pushinteger(L, RC_NO_CONN);
		lua_pushnil(L);
		return 2;
	}
	int mid = 0;
	MQLUA_ENTER(L);
	int rc = n == 1 ? mosquitto_unsubscribe(c->mosq, &mid, filters[0])
	                : mosquitto_unsubscribe_multiple(c->mosq, &mid, n, (char *const *const)filters, NULL);
	client_sync_io(c);
	MQLUA_LEAVE();
	lua_pushinteger(L, rc_from_mosq(rc));
	if (rc == MOSQ_ERR_SUCCESS)
		lua_pushinteger(L, mid);
	else
		lua_pushnil(L);
	return 2;
}

/* client:message_callback_add(sub, callback) */
int client_message_callback_add(lua_State *L)
{
	client_check(L, 1);
	size_t len;
	const char *filter = luaL_checklstring(L, 2, &len);
	check_filter(L, 2, filter, len);
	if (!lua_isfunction(L, 3) && !luaL_getmetafield(L, 3, "__call"))
		luaL_argerror(L, 3, lua_pushfstring(L, "callback must be a function, got %s", luaL_typename(L, 3)));
	lua_settop(L, 3);
	lua_getiuservalue(L, 1, CLIENT_UV_FILTERS);
	int n = (int)lua_rawlen(L, 4);
	int slot = n + 1;
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, 4, i);
		lua_rawgeti(L, -1, 1);
		bool same = lua_rawequal(L, -1, 2);
		lua_pop(L, 2);
		if (same) {
			slot = i;
			break;
		}
	}
	lua_createtable(L, 2, 0);
	lua_pushvalue(L, 2);
	lua_rawseti(L, -2, 1);
	lua_pushvalue(L, 3);
	lua_rawseti(L, -2, 2);
	lua_rawseti(L, 4, slot);
	return 0;
}

int client_message_callback_remove(lua_State *L)
{
	client_check(L, 1);
	luaL_checkstring(L, 2);
	lua_settop(L, 2);
	lua_getiuservalue(L, 1, CLIENT_UV_FILTERS);
	int n = (int)lua_rawlen(L, 3);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, 3, i);
		lua_rawgeti(L, -1, 1);
		bool same = lua_rawequal(L, -1, 2);
		lua_pop(L, 2);
		if (same) {
			for (int j = i; j < n; j++) {
				lua_rawgeti(L, 3, j + 1);
				lua_rawseti(L, 3, j);
			}
			lua_pushnil(L);
			lua_rawseti(L, 3, n);
			break;
		}
	}
	return 0;
}
