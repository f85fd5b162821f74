/*
 * message.c - MQTTMessage, the object on_message receives. One userdata holds
 * the topic and payload bytes inline (a single allocation per message); the
 * Lua strings are made only when a handler reads msg.topic or msg.payload,
 * so a handler that only counts messages costs little. MQTT v5 properties,
 * when a message has some, are made into a table (its user value) at once:
 * libmosquitto frees them when the callback returns.
 */
#include "bindings/mqlua.h"
#include "bindings/properties.h"
#include "runtime/loop.h"

#include <string.h>
#include <time.h>

struct message {
	int mid;
	int qos;
	bool retain;
	bool dup;
	bool v5;                 /* received by an MQTT v5 client: msg.properties is a table */
	double timestamp;        /* monotonic seconds at arrival, as paho's time.monotonic() */
	size_t topiclen;
	size_t payloadlen;
	char data[];             /* topic, NUL, payload */
};

void message_push(lua_State *L, int mid, const char *topic, const void *payload,
                  size_t payloadlen, int qos, bool retain, bool dup,
                  const mosquitto_property *props, bool v5)
{
	size_t topiclen = strlen(topic);
	struct message *m = lua_newuserdatauv(L, sizeof *m + topiclen + 1 + payloadlen, props ? 1 : 0);
	m->mid = mid;
	m->qos = qos;
	m->retain = retain;
	m->dup = dup;
	m->v5 = v5;
	m->timestamp = loop_now();
	m->topiclen = topiclen;
	m->payloadlen = payloadlen;
	memcpy(m->data, topic, topiclen + 1);
	if (payloadlen)
		memcpy(m->data + topiclen + 1, payload, payloadlen);
	luaL_setmetatable(L, MQLUA_MESSAGE_T);
	if (props) {
		properties_push(L, props);
		lua_setiuservalue(L, -2, 1);
	}
}

static struct message *check_message(lua_State *L)
{
	return luaL_checkudata(L, 1, MQLUA_MESSAGE_T);
}

/* msg:json() -> the payload decoded as JSON, or nil and the reason (never raises) */
static int message_json(lua_State *L)
{
	struct message *m = check_message(L);
	if (lua_getfield(L, lua_upvalueindex(1), "json") == LUA_TNIL) {
		lua_pushnil(L);
		lua_pushliteral(L, "JSON needs lua-cjson (apt-get install lua-cjson)");
		return 2;
	}
	lua_getfield(L, -1, "decode");
	lua_pushlstring(L, m->data + m->topiclen + 1, m->payloadlen);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	return 1;
}

static int message_index(lua_State *L)
{
	struct message *m = check_message(L);
	size_t len;
	const char *k = luaL_checklstring(L, 2, &len);
	switch (k[0]) {
	case 't':
		if (strcmp(k, "topic") == 0) { lua_pushlstring(L, m->data, m->topiclen); return 1; }
		if (strcmp(k, "timestamp") == 0) { lua_pushnumber(L, m->timestamp); return 1; }
		break;
	case 'p':
		if (strcmp(k, "payload") == 0) {
			lua_pushlstring(L, m->data + m->topiclen + 1, m->payloadlen);
			return 1;
		}
		if (strcmp(k, "properties") == 0) {
			if (lua_getiuservalue(L, 1, 1) == LUA_TNONE && m->v5)
				lua_newtable(L);
			return 1;
		}
		break;
	case 'j':
		if (strcmp(k, "json") == 0) {
			lua_pushvalue(L, lua_upvalueindex(1));
			lua_pushcclosure(L, message_json, 1);
			return 1;
		}
		break;
	case 'q':
		if (strcmp(k, "qos") == 0) { lua_pushinteger(L, m->qos); return 1; }
		break;
	case 'r':
		if (strcmp(k, "retain") == 0) { lua_pushboolean(L, m->retain); return 1; }
		break;
	case 'm':
		if (strcmp(k, "mid") == 0) { lua_pushinteger(L, m->mid); return 1; }
		break;
	case 'd':
		if (strcmp(k, "dup") == 0) { lua_pushboolean(L, m->dup); return 1; }
		break;
	}
	return luaL_error(L, "MQTTMessage has no field '%s' (fields: topic, payload, qos, retain, mid, dup, "
	                  "timestamp, properties, json)", k);
}

static int message_newindex(lua_State *L)
{
	return luaL_error(L, "MQTTMessage fields are read-only");
}

static int message_tostring(lua_State *L)
{
	struct message *m = check_message(L);
	lua_pushfstring(L, "MQTTMessage(topic=%s, qos=%d, retain=%s, %d bytes)", m->data, m->qos,
	                m->retain ? "true" : "false", (int)m->payloadlen);
	return 1;
}

void message_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__newindex", message_newindex },
		{ "__tostring", message_tostring },
		{ NULL, NULL }
	};
	/* the module table (on top) is __index's upvalue: msg:json() uses mqlua.json */
	if (luaL_newmetatable(L, MQLUA_MESSAGE_T)) {
		luaL_setfuncs(L, meta, 0);
		lua_pushvalue(L, -2);
		lua_pushcclosure(L, message_index, 1);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "MQTTMessage");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
}
