/*
 * fuzz_properties.c - libFuzzer target for MQTT v5 properties
 * (bindings/properties.c): Lua tables to property lists and back, and the
 * flat bytes the outbox stores.
 *
 * The first byte chooses the case, the second the packet type:
 *   0  the rest is flat bytes: properties_decode must refuse them (NULL) or
 *      give a list whose properties_encode is exactly those bytes; that
 *      list is then pushed as a table and goes through case 1's round trip.
 *   1  the rest makes a Lua table (fuzz_lua.c) given to properties_check.
 *   2  the rest makes a mqtt.Properties(packetType) object filled by
 *      assignments (each may raise), then given to properties_check.
 * properties_check either raises a string error or returns a list L1 that
 * round-trips: encode(L1) = E1, decode(E1) succeeds, pushing it gives a
 * table that properties_check accepts for the same packet, and encoding
 * that gives E1 again. Every call runs under lua_pcall in a new Lua state.
 */
#include "bindings/properties.h"
#include "tests/fuzz/fuzz_lua.h"

#include <lauxlib.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int commands[] = { CMD_CONNECT, CMD_CONNACK, CMD_PUBLISH, CMD_PUBACK, CMD_PUBREC, CMD_PUBREL,
	CMD_PUBCOMP, CMD_SUBSCRIBE, CMD_SUBACK, CMD_UNSUBSCRIBE, CMD_UNSUBACK, CMD_DISCONNECT, CMD_AUTH, CMD_WILL };
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static const char *const property_names[] = { "PayloadFormatIndicator", "MessageExpiryInterval", "ContentType",
	"ResponseTopic", "CorrelationData", "SubscriptionIdentifier", "SessionExpiryInterval",
	"AssignedClientIdentifier", "ServerKeepAlive", "AuthenticationMethod", "AuthenticationData",
	"RequestProblemInformation", "WillDelayInterval", "RequestResponseInformation", "ResponseInformation",
	"ServerReference", "ReasonString", "ReceiveMaximum", "TopicAliasMaximum", "TopicAlias", "MaximumQoS",
	"RetainAvailable", "UserProperty", "MaximumPacketSize", "WildcardSubscriptionAvailable",
	"SubscriptionIdentifierAvailable", "SharedSubscriptionAvailable" };
#define NPROPNAMES (sizeof property_names / sizeof property_names[0])

static void die(const char *why, const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	fprintf(stderr, "fuzz_properties: %s\n  first: ", why);
	for (size_t i = 0; i < alen; i++)
		fprintf(stderr, "%02x", a[i]);
	fprintf(stderr, "\n  again: ");
	for (size_t i = 0; b && i < blen; i++)
		fprintf(stderr, "%02x", b[i]);
	fprintf(stderr, "\n");
	abort();
}

/* (table, command) -> lightuserdata list, under pcall */
static int do_check(lua_State *L)
{
	mosquitto_property *list = properties_check(L, 1, (int)lua_tointeger(L, 2), "properties");
	lua_pushlightuserdata(L, list);
	return 1;
}

/* properties_check of the value on top for command: false when it raised
 * (a string error is checked and popped); the value is popped. */
static bool check(lua_State *L, int command, mosquitto_property **list)
{
	lua_pushcfunction(L, do_check);
	lua_insert(L, -2);
	lua_pushinteger(L, command);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
			die("properties_check raised something that is not an error message", NULL, 0, NULL, 0);
		lua_pop(L, 1);
		return false;
	}
	*list = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return true;
}

static int do_push(lua_State *L)
{
	properties_push(L, lua_touserdata(L, 1));
	return 1;
}

/* The round trip of a list that properties_check gave for command. */
static void round_trip(lua_State *L, mosquitto_property *list, int command)
{
	unsigned char *e1 = NULL, *e2 = NULL;
	size_t n1 = 0, n2 = 0;
	if (properties_encode(list, &e1, &n1) != 0)
		abort();
	mosquitto_property *back = properties_decode(e1, n1);
	if (!back && n1 > 0)
		die("properties_decode refuses what properties_encode made", e1, n1, NULL, 0);
	lua_pushcfunction(L, do_push);
	lua_pushlightuserdata(L, back);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		die("properties_push raised", e1, n1, NULL, 0);
	mosquitto_property *again = NULL;
	if (!check(L, command, &again))
		die("properties_check refuses the table properties_push made", e1, n1, NULL, 0);
	if (properties_encode(again, &e2, &n2) != 0)
		abort();
	if (n1 != n2 || (n1 && memcmp(e1, e2, n1) != 0))
		die("the round trip changed the properties", e1, n1, e2, n2);
	mosquitto_property_free_all(&back);
	mosquitto_property_free_all(&again);
	free(e1);
	free(e2);
}

static int make_table(lua_State *L)
{
	struct fz *in = lua_touserdata(L, 1);
	fz_push_table(L, in, 3);
	return 1;
}

static int assign(lua_State *L)
{
	lua_settable(L, 1);
	return 0;
}

/* mqtt.Properties(packetType) filled with assignments from in; a refused
 * assignment (it raises) leaves the object as it was. */
static int make_object(lua_State *L)
{
	struct fz *in = lua_touserdata(L, 1);
	lua_Integer pt = lua_tointeger(L, 2);
	lua_newtable(L);
	properties_open(L);
	lua_getfield(L, -1, "Properties");
	lua_pushinteger(L, pt);
	lua_call(L, 1, 1);
	int obj = lua_gettop(L);
	for (int n = fz_byte(in) % 6; n > 0; n--) {
		lua_pushcfunction(L, assign);
		lua_pushvalue(L, obj);
		if (fz_byte(in) % 4)
			lua_pushstring(L, property_names[fz_byte(in) % NPROPNAMES]);
		else
			fz_push_value(L, in, 0);
		fz_push_value(L, in, 2);
		if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
			if (lua_type(L, -1) != LUA_TSTRING)
				die("a Properties assignment raised something that is not an error message", NULL, 0, NULL, 0);
			lua_pop(L, 1);
		}
	}
	lua_settop(L, obj);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	fz_keys = property_names;
	fz_nkeys = NPROPNAMES;
	int mode = data[0] % 3, command = commands[data[1] % NCOMMANDS];
	struct fz in = { data + 2, size - 2, 64 };
	lua_State *L = luaL_newstate();
	if (!L)
		return 0;
	mosquitto_property *list = NULL;
	if (mode == 0) {
		list = properties_decode(in.p, in.n);
		if (list) {
			unsigned char *e = NULL;
			size_t n = 0;
			if (properties_encode(list, &e, &n) != 0)
				abort();
			if (n != in.n || memcmp(e, in.p, n) != 0)
				die("properties_encode(properties_decode(bytes)) differs from the bytes", in.p, in.n, e, n);
			free(e);
			lua_pushcfunction(L, do_push);
			lua_pushlightuserdata(L, list);
			if (lua_pcall(L, 1, 1, 0) != LUA_OK)
				die("properties_push raised", in.p, in.n, NULL, 0);
			mosquitto_property_free_all(&list);
			if (check(L, command, &list))
				round_trip(L, list, command);
		}
	} else {
		lua_pushcfunction(L, mode == 1 ? make_table : make_object);
		lua_pushlightuserdata(L, &in);
		lua_pushinteger(L, command == CMD_WILL ? 99 : command >> 4);
		if (lua_pcall(L, 2, 1, 0) == LUA_OK && check(L, command, &list))
			round_trip(L, list, command);
	}
	mosquitto_property_free_all(&list);
	lua_close(L);
	return 0;
}
