/*
 * client_sub.c - the subscription methods of Client: subscribe() in all of
 * paho's forms, with a qos or (MQTT v5) a SubscribeOptions for each filter
 * and optional v5 properties (split into one SUBSCRIBE per qos and options,
 * since libmosquitto sends one of those per packet, and reported to the
 * script as one mid), unsubscribe(), the per-filter message callbacks, and
 * paho's SubscribeOptions type. What the script subscribed to (options and
 * properties included) is remembered for resubscription after a reconnect
 * without a session.
 */
#include "bindings/client.h"
#include "bindings/filter_trie.h"
#include "bindings/properties.h"
#include "bindings/rc.h"

#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>

#define MQLUA_SUBOPTS_T "mqlua.SubscribeOptions"

/* ---- SubscribeOptions ---- */

static const char *const subopt_fields[] = { "QoS", "noLocal", "retainAsPublished", "retainHandling" };

/* The subscription options byte of the SubscribeOptions at idx (qos in bits 0-1,
 * no local 2, retain as published 3, retain handling 4-5) with SUBOPTS_GIVEN set,
 * or -1 for another value. */
#define SUBOPTS_GIVEN 0x40
static int subopts_byte(lua_State *L, int idx)
{
	if (!luaL_testudata(L, idx, MQLUA_SUBOPTS_T))
		return -1;
	int v[4];
	for (int i = 0; i < 4; i++) {
		lua_getfield(L, idx, subopt_fields[i]);
		v[i] = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	return SUBOPTS_GIVEN | v[0] | v[1] << 2 | v[2] << 3 | v[3] << 4;
}

/* mqtt.SubscribeOptions(qos=0, noLocal=false, retainAsPublished=false,
 * retainHandling=RETAIN_SEND_ON_SUBSCRIBE), also as a table with these names or
 * qos/no_local/retain_as_published/retain_handling. */
static int l_subopts_new(lua_State *L)
{
	static const char *const names[] = { "qos", "noLocal", "retainAsPublished", "retainHandling",
		"QoS", "no_local", "retain_as_published", "retain_handling", NULL };
	lua_remove(L, 1);   /* the SubscribeOptions table itself (__call) */
	mqlua_named_args(L, 1, names);
	lua_settop(L, 8);
	for (int i = 1; i <= 4; i++)   /* snake_case (and QoS) fill what the paho name left out */
		if (lua_isnil(L, i))
			lua_copy(L, i + 4, i);
	lua_Integer qos = client_check_qos(L, 1, 0);
	bool no_local = mqlua_optboolean(L, 2, false, "noLocal");
	bool rap = mqlua_optboolean(L, 3, false, "retainAsPublished");
	int isnum;
	lua_Integer rh = lua_isnoneornil(L, 4) ? 0 : lua_tointegerx(L, 4, &isnum);
	if (!lua_isnoneornil(L, 4) && (!isnum || rh < 0 || rh > 2))
		luaL_argerror(L, 4, "retainHandling must be 0, 1 or 2 (RETAIN_SEND_ON_SUBSCRIBE, RETAIN_SEND_IF_NEW_SUB "
		              "or RETAIN_DO_NOT_SEND)");
	lua_newuserdatauv(L, 0, 1);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, qos);
	lua_setfield(L, -2, "QoS");
	lua_pushboolean(L, no_local);
	lua_setfield(L, -2, "noLocal");
	lua_pushboolean(L, rap);
	lua_setfield(L, -2, "retainAsPublished");
	lua_pushinteger(L, rh);
	lua_setfield(L, -2, "retainHandling");
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, MQLUA_SUBOPTS_T);
	return 1;
}

/* opts.QoS, opts.noLocal ... and the snake_case names (opts.qos, opts.no_local ...) */
static int l_subopts_index(lua_State *L)
{
	static const char *const aliases[] = { "qos", "no_local", "retain_as_published", "retain_handling" };
	const char *k = luaL_checkstring(L, 2);
	lua_getiuservalue(L, 1, 1);
	for (int i = 0; i < 4; i++)
		if (strcmp(k, aliases[i]) == 0)
			k = subopt_fields[i];
	lua_getfield(L, -1, k);
	return 1;
}

static int l_subopts_tostring(lua_State *L)
{
	int b = subopts_byte(L, 1) & ~SUBOPTS_GIVEN;
	lua_pushfstring(L, "SubscribeOptions(QoS=%d, noLocal=%s, retainAsPublished=%s, retainHandling=%d)",
	                b & 3, b & 4 ? "true" : "false", b & 8 ? "true" : "false", b >> 4);
	return 1;
}

void client_sub_open(lua_State *L)
{
	static const struct { const char *name; int value; } consts[] = {
		{ "RETAIN_SEND_ON_SUBSCRIBE", 0 }, { "RETAIN_SEND_IF_NEW_SUB", 1 }, { "RETAIN_DO_NOT_SEND", 2 },
	};
	luaL_newmetatable(L, MQLUA_SUBOPTS_T);
	lua_pushcfunction(L, l_subopts_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_subopts_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);     /* mqtt.SubscribeOptions: the constants, callable */
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_subopts_new);
	lua_setfield(L, -2, "__call");
	lua_setmetatable(L, -2);
	for (int i = 0; i < 3; i++) {
		lua_pushinteger(L, consts[i].value);
		lua_setfield(L, -2, consts[i].name);
		lua_pushinteger(L, consts[i].value);
		lua_setfield(L, -3, consts[i].name);
	}
	lua_setfield(L, -2, "SubscribeOptions");
}

/* ---- subscribing ---- */

static void check_filter(lua_State *L, int arg, const char *filter, size_t len)
{
	const char *why = topic_check_filter(filter, len);
	if (why)
		luaL_argerror(L, arg, lua_pushfstring(L, "topic filter '%s' %s", filter, why));
}

#define MAX_FILTERS 4096

/* The qos (or options byte of a SubscribeOptions) at stack index idx, taken from
 * subscribe()'s table argument (element i of a list, or 0 for a single {topic, qos}):
 * an error blames that argument, not a stack slot. nil gives 0. */
static int check_table_qos(lua_State *L, int idx, int i)
{
	int b = subopts_byte(L, idx);
	if (b >= 0)
		return b;
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

/* Collects subscribe()'s filters into filters[]/qos[] (strings stay on the stack);
 * qos[] holds the options byte (the qos alone unless a SubscribeOptions was given). */
static int collect_subscriptions(lua_State *L, const char **filters, int *qos)
{
	int n = 0;
	if (lua_type(L, 2) == LUA_TSTRING) {
		size_t len;
		filters[0] = lua_tolstring(L, 2, &len);
		check_filter(L, 2, filters[0], len);
		int b = subopts_byte(L, 3);
		if (b < 0 && !lua_isnil(L, 4)) {
			/* subscribe(topic, options=SubscribeOptions(...)) */
			b = subopts_byte(L, 4);
			if (b < 0)
				luaL_argerror(L, 4, lua_pushfstring(L, "options must be a SubscribeOptions, got %s", luaL_typename(L, 4)));
			if (client_check_qos(L, 3, 0) != 0)
				luaL_argerror(L, 3, "qos and options cannot be combined");
		}
		qos[0] = b >= 0 ? b : client_check_qos(L, 3, 0);
		return 1;
	}
	if (!lua_istable(L, 2))
		luaL_argerror(L, 2, lua_pushfstring(L, "topic must be a string or a table, got %s", luaL_typename(L, 2)));
	luaL_argcheck(L, lua_isnil(L, 4), 4, "options must not be given with a table of topics (put them in the table)");
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

/* Remembers filter -> options byte, or {byte, encoded properties} when props is at
 * props_idx (for resubscription), and marks it touched in this on_connect. */
static void remember_subscription(lua_State *L, struct client *c, const char *filter, int options, int props_idx)
{
	lua_getiuservalue(L, 1, CLIENT_UV_SUBS);
	lua_pushinteger(L, options);
	if (props_idx) {
		lua_createtable(L, 2, 0);
		lua_insert(L, -2);
		lua_rawseti(L, -2, 1);
		lua_pushvalue(L, props_idx);
		lua_rawseti(L, -2, 2);
	}
	lua_setfield(L, -2, filter);
	lua_pop(L, 1);
	if (c->in_on_connect) {
		lua_getiuservalue(L, 1, CLIENT_UV_TOUCHED);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, filter);
		lua_pop(L, 1);
	}
}

/* client:subscribe(topic, qos=0, options=nil, properties=nil) with topic a string,
 * {topic, qos_or_options} or a list of those -> rc, mid */
int client_subscribe(lua_State *L)
{
	static const char *const names[] = { "topic", "qos", "options", "properties", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 5);
	static const char *filters[MAX_FILTERS];
	static int qos[MAX_FILTERS];
	int n = collect_subscriptions(L, filters, qos);
	bool v5 = c->protocol == MQTT_PROTOCOL_V5;
	/* the distinct options bytes (at most 64), in order of first use */
	int keys[64], nkeys = 0, per_key[64] = { 0 };
	for (int i = 0; i < n; i++) {   /* before anything is sent: raise without a half-done subscribe */
		if ((qos[i] & SUBOPTS_GIVEN) && !v5)
			return luaL_argerror(L, lua_isnil(L, 4) ? 2 : 4, "SubscribeOptions need protocol = mqtt.MQTTv5");
		qos[i] &= ~SUBOPTS_GIVEN;
		int k = 0;
		while (k < nkeys && keys[k] != qos[i])
			k++;
		if (k == nkeys)
			keys[nkeys++] = qos[i];
		if (++per_key[k] > 64)
			return luaL_argerror(L, 2, qos[i] > 3 ? "at most 64 filters with the same qos and options in one subscribe()"
			                                      : "at most 64 filters with the same qos in one subscribe()");
	}
	if (!lua_isnil(L, 5) && !v5)
		return luaL_argerror(L, 5, "properties need protocol = mqtt.MQTTv5");
	mosquitto_property *props = properties_check(L, 5, CMD_SUBSCRIBE, "properties");
	int props_idx = 0;
	if (props) {   /* kept as bytes for resubscription */
		unsigned char *bytes;
		size_t len;
		if (properties_encode(props, &bytes, &len) != 0) {
			mosquitto_property_free_all(&props);
			return luaL_error(L, "out of memory");
		}
		lua_pushlstring(L, (const char *)bytes, len);
		free(bytes);
		props_idx = lua_gettop(L);
	}
	if (!c->connected) {
		mosquitto_property_free_all(&props);
		lua_pushinteger(L, RC_NO_CONN);
		lua_pushnil(L);
		return 2;
	}
	/* libmosquitto sends one qos and options per SUBSCRIBE: split, one mid to the script */
	int first_mid = 0, rc = MOSQ_ERR_SUCCESS, groups = 0;
	lua_createtable(L, 0, 3);   /* the group, when split */
	int group = lua_gettop(L);
	MQLUA_ENTER(L);
	for (int g = 0; g < nkeys && rc == MOSQ_ERR_SUCCESS; g++) {
		const char *part[64];
		int positions[64];
		int k = 0;
		for (int i = 0; i < n; i++)
			if (qos[i] == keys[g]) {
				positions[k] = i + 1;
				part[k++] = filters[i];
			}
		int mid = 0;
		rc = mosquitto_subscribe_multiple(c->mosq, &mid, k, (char *const *const)part, keys[g] & 3, keys[g] & ~3, props);
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
	mosquitto_property_free_all(&props);
	lua_pushinteger(L, first_mid);
	lua_setfield(L, group, "mid");
	lua_pushinteger(L, groups);
	lua_setfield(L, group, "pending");
	lua_pushinteger(L, n);
	lua_setfield(L, group, "n");
	if (rc == MOSQ_ERR_SUCCESS)
		for (int i = 0; i < n; i++) {
			remember_subscription(L, c, filters[i], qos[i], props_idx);
			owner_subscribed(L, 1, filters[i]);
		}
	lua_pushinteger(L, rc_from_mosq(rc));
	if (rc == MOSQ_ERR_SUCCESS)
		lua_pushinteger(L, first_mid);
	else
		lua_pushnil(L);
	return 2;
}

/* client:unsubscribe(topic or {topics}, properties=nil) -> rc, mid */
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
		owner_unsubscribed(L, 1, filters[i]);
	}
	lua_pop(L, 1);
	if (!lua_isnil(L, 3) && c->protocol != MQTT_PROTOCOL_V5)
		return luaL_argerror(L, 3, "properties need protocol = mqtt.MQTTv5");
	mosquitto_property *props = properties_check(L, 3, CMD_UNSUBSCRIBE, "properties");
	if (!c->connected) {
		mosquitto_property_free_all(&props);
		lua_pushinteger(L, RC_NO_CONN);
		lua_pushnil(L);
		return 2;
	}
	int mid = 0;
	MQLUA_ENTER(L);
	int rc = mosquitto_unsubscribe_multiple(c->mosq, &mid, n, (char *const *const)filters, props);
	client_sync_io(c);
	MQLUA_LEAVE();
	mosquitto_property_free_all(&props);
	lua_pushinteger(L, rc_from_mosq(rc));
	if (rc == MOSQ_ERR_SUCCESS)
		lua_pushinteger(L, mid);
	else
		lua_pushnil(L);
	return 2;
}

/* Run mode's undo of a message_callback_add/remove (owner_note_call):
 * restore_filter(set, filter, seq, fn) puts the filter's entry back as
 * msgfilters_get saw it before the write. */
static int restore_filter(lua_State *L)
{
	size_t len;
	const char *filter = lua_tolstring(L, 2, &len);
	msgfilters_put(L, 1, filter, len, lua_tointeger(L, 3), 4);
	return 0;
}

/* Before filter's entry in the set at idx changes: how to put it back if
 * the loading version fails (nothing outside a reload's main chunk). */
static void note_filter_write(lua_State *L, int idx, int filter_idx)
{
	if (!owner_noting())
		return;
	size_t len;
	const char *filter = lua_tolstring(L, filter_idx, &len);
	int64_t seq = msgfilters_get(L, idx, filter, len);   /* pushes the function */
	lua_pushvalue(L, idx);
	lua_pushvalue(L, filter_idx);
	lua_pushinteger(L, seq);
	lua_rotate(L, -4, -1);   /* set, filter, seq, function */
	owner_note_call(L, restore_filter, 4);
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
	if (lua_getiuservalue(L, 1, CLIENT_UV_FILTERS) == LUA_TNIL) {
		/* no undo note: an empty set and none dispatch alike */
		lua_pop(L, 1);
		msgfilters_new(L);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, 1, CLIENT_UV_FILTERS);
	}
	owner_claim(L, 3);
	note_filter_write(L, 4, 2);
	msgfilters_add(L, 4, filter, len, 3);
	return 0;
}

int client_message_callback_remove(lua_State *L)
{
	client_check(L, 1);
	size_t len;
	const char *filter = luaL_checklstring(L, 2, &len);
	lua_settop(L, 2);
	if (lua_getiuservalue(L, 1, CLIENT_UV_FILTERS) == LUA_TNIL)
		return 0;
	note_filter_write(L, 3, 2);
	msgfilters_remove(L, 3, filter, len);
	return 0;
}
