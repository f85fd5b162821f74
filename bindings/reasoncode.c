/*
 * reasoncode.c - paho's ReasonCode as a Lua value (the MQTT v5 reason codes
 * of CONNACK, PUBACK, SUBACK, DISCONNECT ..., named as paho names them, the
 * name depending on the packet type), and mqtt.CallbackAPIVersion, the
 * values that select the form of the client callbacks.
 *
 * A ReasonCode compares with == against another ReasonCode (by value) and
 * with <, <= against numbers or ReasonCodes. Lua calls __eq only when both
 * sides are tables or userdata, so `rc == 0` is always false: scripts write
 * `rc.value == 0`, `not rc.is_failure`, or compare with a constructed one:
 * `rc == mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, "Success")`.
 */
#include "bindings/mqlua.h"
#include "bindings/rc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MQLUA_REASONCODE_T "mqlua.ReasonCode"
#define MQLUA_CBAPI_T      "mqlua.CallbackAPIVersion"

/* packet type bits (1 << type), types as in paho's PacketTypes */
#define T(x) (1u << PT_##x)
enum { PT_CONNECT = 1, PT_CONNACK, PT_PUBLISH, PT_PUBACK, PT_PUBREC, PT_PUBREL, PT_PUBCOMP,
       PT_SUBSCRIBE, PT_SUBACK, PT_UNSUBSCRIBE, PT_UNSUBACK, PT_PINGREQ, PT_PINGRESP,
       PT_DISCONNECT, PT_AUTH };
#define ACKS (T(PUBACK) | T(PUBREC))
#define FAILS (T(CONNACK) | ACKS | T(SUBACK) | T(UNSUBACK) | T(DISCONNECT))

static const struct reason { uint8_t value; unsigned types; const char *name; } reasons[] = {
	{ 0, T(CONNACK) | ACKS | T(PUBREL) | T(PUBCOMP) | T(UNSUBACK) | T(AUTH), "Success" },
	{ 0, T(DISCONNECT), "Normal disconnection" },
	{ 0, T(SUBACK), "Granted QoS 0" },
	{ 1, T(SUBACK), "Granted QoS 1" },
	{ 2, T(SUBACK), "Granted QoS 2" },
	{ 4, T(DISCONNECT), "Disconnect with will message" },
	{ 16, ACKS, "No matching subscribers" },
	{ 17, T(UNSUBACK), "No subscription found" },
	{ 24, T(AUTH), "Continue authentication" },
	{ 25, T(AUTH), "Re-authenticate" },
	{ 128, FAILS, "Unspecified error" },
	{ 129, T(CONNACK) | T(DISCONNECT), "Malformed packet" },
	{ 130, T(CONNACK) | T(DISCONNECT), "Protocol error" },
	{ 131, FAILS, "Implementation specific error" },
	{ 132, T(CONNACK), "Unsupported protocol version" },
	{ 133, T(CONNACK), "Client identifier not valid" },
	{ 134, T(CONNACK), "Bad user name or password" },
	{ 135, FAILS, "Not authorized" },
	{ 136, T(CONNACK), "Server unavailable" },
	{ 137, T(CONNACK) | T(DISCONNECT), "Server busy" },
	{ 138, T(CONNACK), "Banned" },
	{ 139, T(DISCONNECT), "Server shutting down" },
	{ 140, T(CONNACK) | T(DISCONNECT), "Bad authentication method" },
	{ 141, T(DISCONNECT), "Keep alive timeout" },
	{ 142, T(DISCONNECT), "Session taken over" },
	{ 143, T(SUBACK) | T(UNSUBACK) | T(DISCONNECT), "Topic filter invalid" },
	{ 144, T(CONNACK) | ACKS | T(DISCONNECT), "Topic name invalid" },
	{ 145, ACKS | T(SUBACK) | T(UNSUBACK), "Packet identifier in use" },
	{ 146, T(PUBREL) | T(PUBCOMP), "Packet identifier not found" },
	{ 147, T(DISCONNECT), "Receive maximum exceeded" },
	{ 148, T(DISCONNECT), "Topic alias invalid" },
	{ 149, T(CONNACK) | T(DISCONNECT), "Packet too large" },
	{ 150, T(DISCONNECT), "Message rate too high" },
	{ 151, T(CONNACK) | ACKS | T(SUBACK) | T(DISCONNECT), "Quota exceeded" },
	{ 152, T(DISCONNECT), "Administrative action" },
	{ 153, ACKS | T(DISCONNECT), "Payload format invalid" },
	{ 154, T(CONNACK) | T(DISCONNECT), "Retain not supported" },
	{ 155, T(CONNACK) | T(DISCONNECT), "QoS not supported" },
	{ 156, T(CONNACK) | T(DISCONNECT), "Use another server" },
	{ 157, T(CONNACK) | T(DISCONNECT), "Server moved" },
	{ 158, T(SUBACK) | T(DISCONNECT), "Shared subscription not supported" },
	{ 159, T(CONNACK) | T(DISCONNECT), "Connection rate exceeded" },
	{ 160, T(DISCONNECT), "Maximum connect time" },
	{ 161, T(SUBACK) | T(DISCONNECT), "Subscription identifiers not supported" },
	{ 162, T(SUBACK) | T(DISCONNECT), "Wildcard subscription not supported" },
};
#define NREASONS (sizeof reasons / sizeof reasons[0])

struct reasoncode {
	uint8_t packet_type;
	uint8_t value;
};

/* The entry for value in packet_type, or NULL when that packet cannot carry it. */
static const struct reason *find_value(int packet_type, int value)
{
	for (size_t i = 0; i < NREASONS; i++)
		if (reasons[i].value == value && packet_type > 0 && packet_type < 16 &&
		    (reasons[i].types & (1u << packet_type)))
			return &reasons[i];
	return NULL;
}

static const char *reason_name(const struct reasoncode *r, char *buf, size_t len)
{
	const struct reason *e = find_value(r->packet_type, r->value);
	/* a broker sent a code its packet may not carry: name it as another packet would */
	for (size_t i = 0; !e && i < NREASONS; i++)
		if (reasons[i].value == r->value)
			e = &reasons[i];
	if (e)
		return e->name;
	snprintf(buf, len, "Unknown reason code %d", r->value);
	return buf;
}

const char *reasoncode_name(int packet_type, int value)
{
	static char buf[40];
	struct reasoncode r = { (uint8_t)packet_type, (uint8_t)value };
	return reason_name(&r, buf, sizeof buf);
}

void reasoncode_push(lua_State *L, int packet_type, int value)
{
	struct reasoncode *r = lua_newuserdatauv(L, sizeof *r, 0);
	r->packet_type = (uint8_t)packet_type;
	r->value = (uint8_t)value;
	luaL_setmetatable(L, MQLUA_REASONCODE_T);
}

int reasoncode_from_connack(int connack)
{
	switch (connack) {
	case 0: return 0;
	case 1: return 132;   /* unacceptable protocol version */
	case 2: return 133;   /* identifier rejected */
	case 3: return 136;   /* server unavailable */
	case 4: return 134;   /* bad user name or password */
	case 5: return 135;   /* not authorised */
	default: return 128;
	}
}

int reasoncode_from_rc(int rc)
{
	switch (rc) {
	case RC_SUCCESS: return 0;
	case RC_KEEPALIVE: return 141;
	default: return 128;
	}
}

/* mqtt.ReasonCode(packet_type, name_or_value="Success") (also paho's
 * (packetType, aName, identifier) order) -> a ReasonCode; raises for a name or
 * value the packet type does not have, as paho does. */
static int l_reasoncode_new(lua_State *L)
{
	static const char *const names[] = { "packetType", "aName", "identifier", NULL };
	mqlua_named_args(L, 1, names);
	lua_Integer type = luaL_checkinteger(L, 1);
	luaL_argcheck(L, type >= PT_CONNECT && type <= PT_AUTH, 1, "packet_type must be one of mqtt.PacketTypes (1 to 15)");
	if (lua_type(L, 3) == LUA_TNUMBER)   /* ReasonCode(type, nil, identifier) */
		lua_copy(L, 3, 2);
	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer v = luaL_checkinteger(L, 2);
		if (v < 0 || v > 255 || !find_value((int)type, (int)v))
			return luaL_argerror(L, 2, lua_pushfstring(L, "%d is not a reason code of packet type %d", (int)v, (int)type));
		reasoncode_push(L, (int)type, (int)v);
		return 1;
	}
	const char *name = luaL_optstring(L, 2, "Success");
	if (type == PT_DISCONNECT && strcmp(name, "Success") == 0)
		name = "Normal disconnection";
	for (size_t i = 0; i < NREASONS; i++)
		if ((reasons[i].types & (1u << type)) && strcmp(reasons[i].name, name) == 0) {
			reasoncode_push(L, (int)type, reasons[i].value);
			return 1;
		}
	return luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is not a reason code name of packet type %d", name, (int)type));
}

static struct reasoncode *check_rc(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, MQLUA_REASONCODE_T);
}

static int l_getname(lua_State *L)
{
	char buf[40];
	lua_pushstring(L, reason_name(check_rc(L, 1), buf, sizeof buf));
	return 1;
}

static int l_index(lua_State *L)
{
	struct reasoncode *r = check_rc(L, 1);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "value") == 0)
		lua_pushinteger(L, r->value);
	else if (strcmp(k, "packetType") == 0)
		lua_pushinteger(L, r->packet_type);
	else if (strcmp(k, "is_failure") == 0)
		lua_pushboolean(L, r->value >= 0x80);
	else if (strcmp(k, "getName") == 0 || strcmp(k, "json") == 0)
		lua_pushcfunction(L, l_getname);
	else
		lua_pushnil(L);
	return 1;
}

/* The number for a comparison operand: a ReasonCode's value or a number. */
static lua_Number operand(lua_State *L, int idx)
{
	struct reasoncode *r = luaL_testudata(L, idx, MQLUA_REASONCODE_T);
	if (r)
		return r->value;
	if (lua_type(L, idx) != LUA_TNUMBER)
		luaL_error(L, "attempt to compare a ReasonCode with a %s", luaL_typename(L, idx));
	return lua_tonumber(L, idx);
}

static int l_eq(lua_State *L)
{
	struct reasoncode *a = luaL_testudata(L, 1, MQLUA_REASONCODE_T);
	struct reasoncode *b = luaL_testudata(L, 2, MQLUA_REASONCODE_T);
	lua_pushboolean(L, a && b && a->value == b->value);
	return 1;
}

static int l_lt(lua_State *L)
{
	lua_pushboolean(L, operand(L, 1) < operand(L, 2));
	return 1;
}

static int l_le(lua_State *L)
{
	lua_pushboolean(L, operand(L, 1) <= operand(L, 2));
	return 1;
}

/* ---- CallbackAPIVersion ---- */

static int cbapi_tostring(lua_State *L)
{
	lua_getfield(L, 1, "name");
	lua_pushfstring(L, "CallbackAPIVersion.%s", lua_tostring(L, -1));
	return 1;
}

int callback_api_version(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, MQLUA_CBAPI_T);
	bool is = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	if (!is)
		return 0;
	lua_getfield(L, idx, "value");
	int v = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

void callback_api_version_push(lua_State *L, int version)
{
	lua_getfield(L, LUA_REGISTRYINDEX, MQLUA_CBAPI_T ".values");
	lua_getfield(L, -1, version == 2 ? "VERSION2" : "VERSION1");
	lua_remove(L, -2);
}

void reasoncode_open(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", l_index },
		{ "__tostring", l_getname },
		{ "__eq", l_eq },
		{ "__lt", l_lt },
		{ "__le", l_le },
		{ NULL, NULL }
	};
	luaL_newmetatable(L, MQLUA_REASONCODE_T);
	luaL_setfuncs(L, meta, 0);
	lua_pop(L, 1);
	lua_pushcfunction(L, l_reasoncode_new);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "ReasonCode");
	lua_setfield(L, -2, "ReasonCodes");        /* paho 1.x's name */

	/* CallbackAPIVersion.VERSION1/VERSION2: tables of their own type, so that
	 * Client(mqtt.CallbackAPIVersion.VERSION2, "id") cannot be taken for a client id */
	luaL_newmetatable(L, MQLUA_CBAPI_T);
	lua_pushcfunction(L, cbapi_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	lua_createtable(L, 0, 2);
	static const char *const versions[] = { "VERSION1", "VERSION2" };
	for (int i = 0; i < 2; i++) {
		lua_createtable(L, 0, 2);
		lua_pushstring(L, versions[i]);
		lua_setfield(L, -2, "name");
		lua_pushinteger(L, i + 1);
		lua_setfield(L, -2, "value");
		luaL_setmetatable(L, MQLUA_CBAPI_T);
		lua_setfield(L, -2, versions[i]);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, MQLUA_CBAPI_T ".values");   /* for client.callback_api_version */
	lua_setfield(L, -2, "CallbackAPIVersion");
}
